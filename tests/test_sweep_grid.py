"""Grid parsing of `specbench sweep`: comma lists of settings, the strategy-parameter grammar
(values of one key run until the next `key=`), YAML grids, precedence and validation of every
point before any model loads. Pure parsing: no model is loaded.

Run: .venv/bin/python -m pytest tests/test_sweep_grid.py -q
"""

from __future__ import annotations

import pytest
import yaml

from specbench_cli.config import FIELDS
from specbench_cli.errors import BadInput
from specbench_cli.sweep_grid import (
    build_sweep,
    parse_strategy_grid,
    parse_values,
    strategy_from_yaml,
)


@pytest.mark.parametrize("text,axis,expected", [
    ("1,2,4,8", "k", [1, 2, 4, 8]),
    (" 1 , 2 ", "k", [1, 2]),
    ("4", "k", [4]),
    ("0,1", "temperature", [0.0, 1.0]),
    ("0.7", "temperature", [0.7]),
    ([1, 2], "k", [1, 2]),
    (3, "k", [3]),
    (2.0, "k", [2]),
    ([0, 0.5], "temperature", [0.0, 0.5]),
    ("0.9,1", "top_p", [0.9, 1.0]),
])  # fmt: skip
def test_values(text, axis, expected):
    values = parse_values(text, axis)
    assert values == expected
    assert all(type(v) is type(e) for v, e in zip(values, expected, strict=True))


@pytest.mark.parametrize("text,axis,fragment", [
    ("", "k", "empty value"),
    ("1,,2", "k", "empty value"),
    ("1,", "k", "empty value"),
    ("1.5", "k", "not an integer"),
    ("x", "temperature", "not a number"),
    ("1,2,1", "k", "given twice"),
    ("nan", "temperature", "not a finite number"),
    ("inf", "temperature", "not a finite number"),
    ([True], "k", "not an integer"),
    ([[1]], "k", "not an integer"),
    ([], "k", "no value"),
])  # fmt: skip
def test_bad_values(text, axis, fragment):
    with pytest.raises(BadInput, match=fragment) as info:
        parse_values(text, axis)
    assert "--" + axis.replace("_", "-") in str(info.value)


@pytest.mark.parametrize("text,variants,swept", [
    ("sps", ["sps"], []),
    ("cactus:delta=0.5", ["cactus:delta=0.5"], []),
    ("cactus:delta=0.25,0.5,1", ["cactus:delta=0.25", "cactus:delta=0.5", "cactus:delta=1"],
     ["delta"]),
    ("cactus:delta=0.25,0.5,", ["cactus:delta=0.25", "cactus:delta=0.5"], ["delta"]),
    ("tas:eps=0.05,0.09,alpha=0.2,0.3",
     ["tas:eps=0.05,alpha=0.2", "tas:eps=0.05,alpha=0.3", "tas:eps=0.09,alpha=0.2",
      "tas:eps=0.09,alpha=0.3"], ["eps", "alpha"]),
    ("tas:bonus=argmax,eps=0.1,0.2", ["tas:bonus=argmax,eps=0.1", "tas:bonus=argmax,eps=0.2"],
     ["eps"]),
    (" cactus : delta = 0.5 , 1 ", ["cactus:delta=0.5", "cactus:delta=1"], ["delta"]),
])  # fmt: skip
def test_strategy_grammar(text, variants, swept):
    grid = parse_strategy_grid(text)
    assert grid.variants() == variants
    assert grid.swept() == swept
    assert parse_strategy_grid(grid.spec()) == grid  # the list form parses back


@pytest.mark.parametrize("text,fragment", [
    ("cactus:0.5", "not key=value or a value after one"),
    ("cactus:delta=", "not key=value"),
    ("cactus:delta=0.5,,1", "not key=value"),
    ("cactus:delta=0.5,delta=1", "'delta' given twice"),
    ("cactus:delta=0.5,0.5", "'0.5' given twice"),
    ("cactus:=1", "no parameter name"),
    (":delta=1", "expected 'name'"),
    ("", "expected 'name'"),
])  # fmt: skip
def test_bad_strategy_grammar(text, fragment):
    with pytest.raises(BadInput, match=fragment):
        parse_strategy_grid(text)


def test_yaml_strategy_entries():
    assert strategy_from_yaml({"name": "cactus", "delta": [0.25, 1]}, "f").variants() == [
        "cactus:delta=0.25", "cactus:delta=1"]
    assert strategy_from_yaml({"name": "tas", "bonus": "argmax"}, "f").variants() == [
        "tas:bonus=argmax"]
    assert strategy_from_yaml("cactus:delta=1,2", "f").swept() == ["delta"]
    with pytest.raises(BadInput, match="mapping with 'name'"):
        strategy_from_yaml({"delta": 1}, "f")


def sweep_of(axes=None, strategies=None, settings=None, yaml_path=None):
    return build_sweep(yaml_path, settings or {}, axes or {}, strategies)


def test_points_are_the_product_and_name_k_and_temperature():
    sweep = sweep_of({"k": "1,2,4", "temperature": "0,1"}, ["sps", "cactus:delta=0.5,1"])
    points = sweep.points()
    assert len(points) == 6
    assert points[0] == {"temperature": 0.0, "k": 1}
    assert points[-1] == {"temperature": 1.0, "k": 4}
    assert sweep.base.strategies == ["sps", "cactus:delta=0.5", "cactus:delta=1"]
    assert sweep.swept_params() == {("cactus", "delta")}
    cfg = sweep.point_config({"temperature": 0.0, "k": 2})
    assert (cfg.k, cfg.temperature, cfg.strategies) == (2, 0.0, sweep.base.strategies)
    # a point names k and temperature even when neither is swept
    assert sweep_of({}, ["sps"]).points() == [{"temperature": 1.0, "k": 4}]
    # other settings join the point only when swept
    assert sweep_of({"top_p": "0.9,1"}, ["sps"]).points()[0] == {
        "temperature": 1.0, "top_p": 0.9, "k": 4}


def test_every_point_is_validated_before_loading():
    with pytest.raises(BadInput, match=r"grid point .*'k': 0.*--k must be"):
        sweep_of({"k": "2,0"})
    with pytest.raises(BadInput, match="--temperature must be a finite number >= 0"):
        sweep_of({"temperature": "1,-1"})
    with pytest.raises(BadInput, match="delta"):
        sweep_of({}, ["cactus:delta=0.5,-1"])
    with pytest.raises(BadInput, match="no parameter 'nope'"):
        sweep_of({}, ["sps:nope=1,2"])
    with pytest.raises(BadInput, match="twice with the same settings"):
        sweep_of({}, ["cactus:delta=1", "cactus:delta=1.0,2"])


def test_batch_size_axis():
    if "batch_size" in FIELDS:
        assert sweep_of({"batch_size": "1,4"}).axes["batch_size"] == [1, 4]
        with pytest.raises(BadInput, match="batch-size"):
            sweep_of({"batch_size": "0,4"})
    else:  # a build without batched decoding says so before loading anything
        with pytest.raises(BadInput, match="--batch-size: this version of specbench has no"):
            sweep_of({"batch_size": "1,4"})
    with pytest.raises(BadInput, match="--batch-size: '2.5' is not an integer"):
        sweep_of({"batch_size": "2.5"})


def test_yaml_grid_and_precedence(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "k": [1, 2], "temperature": "0,1", "limit": 2, "seed": 3,
        "strategies": ["sps", {"name": "cactus", "delta": [0.25, 1.0]}],
    }))  # fmt: skip
    sweep = sweep_of(yaml_path=path)
    assert sweep.axes["k"] == [1, 2] and sweep.axes["temperature"] == [0.0, 1.0]
    assert (sweep.base.limit, sweep.base.seed) == (2, 3)
    assert sweep.base.strategies == ["sps", "cactus:delta=0.25", "cactus:delta=1.0"]
    # flags override the file, axis by axis and setting by setting
    over = sweep_of({"k": "8"}, ["tas"], {"seed": 7}, yaml_path=path)
    assert over.axes["k"] == [8] and over.axes["temperature"] == [0.0, 1.0]
    assert over.base.strategies == ["tas"] and over.base.seed == 7 and over.base.limit == 2
    # the sweep written back as YAML is the same sweep
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(sweep.to_dict(), sort_keys=False))
    repeat = sweep_of(yaml_path=again)
    assert repeat.points() == sweep.points()
    assert repeat.base.to_dict() == sweep.base.to_dict()
    assert repeat.swept_params() == sweep.swept_params()


@pytest.mark.parametrize("content,fragment", [
    ({"kk": [1, 2]}, "unknown setting 'kk'"),
    ({"k": [1, "x"]}, "k: 'x' is not an integer"),
    ({"strategies": [{"delta": 1}]}, "mapping with 'name'"),
    ({"strategies": ["cactus:0.5"]}, "not key=value"),
    ([1, 2], "mapping of settings"),
])  # fmt: skip
def test_bad_yaml(tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(BadInput, match=fragment):
        sweep_of(yaml_path=path)
