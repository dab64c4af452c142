"""Named choice spaces: integer and float ranges (log scale), conditional dimensions; their
operators, canonical keys and round trips through config, journal and resume."""
from __future__ import annotations

import json
import math
import random
import textwrap

import pytest
import yaml

from evolution import resume, run
from evolution.config import ConfigError, config_from_dict
from evolution.journal import read_journal
from genome import ChoiceGenome, GenomeError, genome_from_dict, parse_genome
from genome.choice import crossover, mutate, mutate_one
from genome.params import Space

PARAMS = {
    "op": ["conv", "pool"],
    "kernel": {"values": [3, 5], "when": {"op": "conv"}},
    "layers": {"int": [1, 4]},
    "width": {"log_int": [8, 512]},
    "dropout": {"uniform": [0.0, 0.5]},
    "lr": {"log_uniform": [1e-4, 0.3]},
}
SPACE = Space.from_params(PARAMS)

SCORER = textwrap.dedent('''
    import math

    def score(genome, settings):
        p = settings["params"]
        assert ("kernel" in p) == (p["op"] == "conv")
        return -abs(math.log10(p["lr"]) + 2) - abs(p["layers"] - 3) + (p["op"] == "conv")
''')


def test_draws_stay_in_range_and_conditionals_are_null_when_inactive():
    rng = random.Random(0)
    genomes = [ChoiceGenome.random(SPACE, rng) for _ in range(2000)]
    for g in genomes:
        g.check(SPACE)
        named = SPACE.as_dict(g.values)
        assert (g.values[1] is None) == (named["op"] == "pool")
        assert type(named["layers"]) is int and type(named["lr"]) is float
    lrs = [g.values[5] for g in genomes]
    below = sum(lr < math.sqrt(1e-4 * 0.3) for lr in lrs) / len(lrs)  # log scale: half below
    assert 0.45 < below < 0.55
    assert {g.values[2] for g in genomes} == {1, 2, 3, 4}
    widths = [g.values[3] for g in genomes]
    assert min(widths) >= 8 and max(widths) <= 512 and sum(w < 64 for w in widths) > 900


def test_check_refuses_out_of_range_wrong_type_and_misplaced_nulls():
    good = ChoiceGenome(("conv", 3, 2, 64, 0.25, 0.01))
    good.check(SPACE)
    for bad, message in [(("conv", 3, 9, 64, 0.25, 0.01), "'layers' is 9"),
                         (("conv", 3, 2.0, 64, 0.25, 0.01), "'layers' is 2.0"),
                         (("pool", 3, 2, 64, 0.25, 0.01), "'kernel' is 3 but inactive"),
                         (("conv", None, 2, 64, 0.25, 0.01), "'kernel' is None"),
                         (("conv", 3, 2, 64, 0.25, 1.0), "'lr' is 1.0")]:
        with pytest.raises(GenomeError, match=message):
            ChoiceGenome(bad).check(SPACE)


def test_operators_keep_genomes_valid_and_switch_conditionals():
    rng = random.Random(1)
    switched = moved = 0
    for _ in range(500):
        a, b = ChoiceGenome.random(SPACE, rng), ChoiceGenome.random(SPACE, rng)
        child = mutate_one(a, SPACE, rng)
        child.check(SPACE)
        changed = [i for i, (x, y) in enumerate(zip(a.values, child.values)) if x != y]
        assert changed and (len(changed) == 1 or changed == [0, 1])  # op switches kernel
        switched += changed == [0, 1]
        moved += changed == [5]
        mutate(a, SPACE, rng, p_m=1, q_m=0.5).check(SPACE)
        for c in crossover(a, b, rng, p_c=1.0, space=SPACE):
            c.check(SPACE)
    assert switched > 30 and moved > 30
    assert mutate_one(a, SPACE, rng) != a and a.check(SPACE)  # the argument is not modified


def test_float_values_are_canonical_and_round_trip_through_text_and_dict():
    rng = random.Random(2)
    for _ in range(200):
        g = ChoiceGenome.random(SPACE, rng)
        assert parse_genome(g.to_string()) == g == genome_from_dict(
            json.loads(json.dumps(g.to_dict())))
        assert len(repr(g.values[5])) <= 12  # 6 significant digits
    g = ChoiceGenome(("pool", None, 1, 8, 0.5, 0.0001))
    assert g.key() == '["pool",null,1,8,0.5,0.0001]'


def test_config_validation_names_the_dimension(tiny):
    base = {**tiny, "evaluation": {"evaluator": "m:f", "objective": "score"}}
    for params, message in [({"a": {"int": [5, 1]}}, "a: int needs finite low <= high"),
                            ({"a": {"log_uniform": [0, 1]}}, "a: log_uniform needs low > 0"),
                            ({"a": {"int": [1.5, 3]}}, "a: .int: .low, high.. takes two integers"),
                            ({"a": {"int": [1, 3], "uniform": [0, 1]}}, "a: give exactly one of"),
                            ({"a": {"values": [1], "when": {"b": 1}}},
                             "a: when names .b., which is not a dimension defined before"),
                            ({"a": [1, 2], "b": {"int": [1, 2], "when": {"a": 3}}},
                             "b: when a: .3. is not a value a can take")]:
        with pytest.raises(ConfigError, match=f"search.params: {message}"):
            config_from_dict({**base, "search": {"encoding": "choice", "params": params}})
    with pytest.raises(ConfigError, match="either choices"):
        config_from_dict({**base, "search": {"encoding": "choice"}})


def test_params_round_trip_through_config_journal_and_resume(user_module, tiny, write_config):
    module = user_module("ranges_scorer", SCORER)
    data = {**tiny, "deterministic": True, "pool": {"backend": "serial"},
            "search": {"encoding": "choice", "params": PARAMS},
            "strategy": {"name": "aging", "population": 6, "sample": 3, "cycles": 14},
            "evaluation": {"evaluator": f"{module}:score", "objective": "score"}}
    config = config_from_dict(yaml.safe_load(yaml.safe_dump(data, sort_keys=False)))
    assert config_from_dict(config.to_dict()) == config
    assert config.search.decoder_space()["params"] == PARAMS
    summary = run(config)
    events = list(read_journal(summary.run_dir))
    asks = [e for e in events if e["event"] == "ask"]
    assert len(asks) == 20 and summary.failures == 0
    for ask in asks:
        genome = genome_from_dict(ask["genome"]).check(config.search.space)
        assert ask["key"] == genome.key()
    # cut the journal after the 9th result and resume: the same journal comes back
    path = summary.run_dir / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    results = [i for i, line in enumerate(lines) if '"event":"result"' in line.replace(" ", "")]
    path.write_text("".join(lines[:results[8] + 1]))
    (summary.run_dir / "state.json").unlink(missing_ok=True)
    (summary.run_dir / "summary.json").unlink(missing_ok=True)
    resume(summary.run_dir)
    again = [e for e in read_journal(summary.run_dir) if e["event"] in ("ask", "result")]
    before = [e for e in events if e["event"] in ("ask", "result")]
    strip = lambda e: {k: v for k, v in e.items() if k not in ("time", "started", "finished",
                                                              "seconds", "pid", "worker")}
    assert [strip(e) for e in again] == [strip(e) for e in before]


def test_report_names_the_space_and_the_best_parameters(user_module, tiny):
    from evolution.report import report_run

    module = user_module("ranges_report", SCORER)
    config = config_from_dict({
        **tiny, "pool": {"backend": "serial"}, "search": {"encoding": "choice", "params": PARAMS},
        "strategy": {"name": "random", "evaluations": 6},
        "evaluation": {"evaluator": f"{module}:score", "objective": "score"}})
    summary = run(config)
    report_run(summary.run_dir)
    text = (summary.run_dir / "report" / "report.md").read_text()
    assert "lr: log_uniform 0.0001..0.3" in text and "kernel: 3|5 (when {'op': ('conv',)})" in text
    assert "| best parameters | op " in text and "'lr' " not in text and "lr 0." in text
