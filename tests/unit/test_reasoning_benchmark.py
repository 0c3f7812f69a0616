"""benchmarks.reasoning's bookkeeping: buckets, per-setting tables, the target lines; and the
router calibration's."""

from benchmarks.harness.chat import CONFIGS, Outcome
from benchmarks.harness.problems import bucket_of, load_problems
from benchmarks.reasoning import table, targets


def outcome(config, verifiers, bucket, correct, tokens, busy=0.9):
    return Outcome(config=config, verifiers=verifiers, problem="p", task="t", bucket=bucket,
                   correct=correct, strategy=config.split("/")[0], difficulty=None,
                   difficulty_estimator=None, completion_tokens=tokens,
                   reasoning_tokens=tokens // 2, engine_calls=3,
                   nodes=5, time_s=1.0, busy_s=busy, latency_s=1.0)


def test_problems_are_stratified_and_bucketed():
    problems = load_problems(per_level=2, countdown=3, seed=900_000)
    assert len(problems) == 8 * 2 + 3
    buckets = [bucket_of(p) for p in problems]
    assert buckets.count("arith 1-2") == 4 and buckets.count("arith 6-8") == 6
    assert buckets.count("countdown") == 3


def test_tables_share_single_pass_rows_and_targets_read_them():
    rows = []
    for name, _, selects in CONFIGS:
        for setting in (["learned", "learned+logic"] if selects else ["learned"]):
            good = name.startswith("mcts") or (name == "auto")
            rows += [outcome(name, setting, "countdown", good, 100 if name == "auto" else 400),
                     outcome(name, setting, "arith 1-2", True, 50)]
    results = table(rows, ["learned", "learned+logic"], ["arith 1-2", "countdown"])
    # greedy and self-consistency do not select by verifiers: the same rows in both settings
    assert results["learned+logic"]["greedy"] == results["learned"]["greedy"]
    assert results["learned"]["mcts/5"]["hard"]["accuracy"] == 1.0
    assert results["learned"]["greedy"]["hard"]["accuracy"] == 0.0
    assert results["learned"]["greedy"]["all"]["n"] == 2
    phases = [{"config": "beam/3", "prefix_cache_hit_rate": 0.8, "prefix_cache_ceiling": 0.85},
              {"config": "mcts/5", "prefix_cache_hit_rate": 0.75}]
    lines = targets(results, phases)
    assert "+100.0 points" in lines[0] and "**met**" in lines[0]
    assert "**met**" in lines[1]  # auto: as accurate as mcts, a quarter of its tokens
    assert "**met**" in lines[2]  # beam as accurate as best_of_n: "at least as accurate"
    assert "**met**" in lines[3] and "**met**" in lines[4]
    assert lines[4].endswith("allow: 0.85, n/a")  # the ceiling, where the phase measured one


def test_router_calibration_joins_the_phases_per_problem_and_covers_the_server_default():
    from benchmarks.calibrate_router import calibration_problems, verifier_sets
    from server.settings import Settings

    def run(config, correct, tokens, difficulty=None):
        o = outcome(config, "-", "arith 1-2", correct, tokens)
        return o.__class__(**{**o.__dict__, "difficulty": difficulty})

    joined = calibration_problems([run("auto", True, 5, difficulty=0.4)], [run("greedy", True, 5)],
                                  {"beam": [run("beam", False, 60)], "mcts": [run("mcts", True, 40)]})
    assert joined[0].difficulty == 0.4
    assert joined[0].correct == {"greedy": True, "beam": False, "mcts": True}
    assert joined[0].tokens == {"greedy": 5, "beam": 60, "mcts": 40}
    sets = [set(w) for w in verifier_sets().values()]
    assert {"prm", "orm"} in sets and set(Settings().search_verifiers) in sets


def test_router_calibration_writes_how_the_routed_mcts_runs_into_the_table():
    import argparse

    from benchmarks.calibrate_router import command_flags, router_table
    from search.router import RouterTable
    from training.components.router_fit import Fit

    args = argparse.Namespace(per_level=30, countdown=120, seed=800_000, tolerance=0.01,
                              model="models/demo/base", mcts_accept_greedy=1e-4,
                              mcts_budget=450)
    fit = Fit(0.35, 0.35, 0.64, 196.0)
    fits = {setting: (fit, {"always mcts": fit}, setting == "learned")
            for setting in ("learned", "learned+logic", "server default")}
    table = router_table(args, "learned", 360, fits)
    # only the sets whose fit chose the greedy-first mcts carry its settings
    assert table["routes"][0]["mcts"] == {"accept_greedy": 1e-4, "budget_tokens": 450}
    assert "mcts" not in table["routes"][1]
    assert table["fitted_by"].endswith("--mcts-accept-greedy 0.0001 --mcts-budget 450")
    route = RouterTable.from_json(table).thresholds_for(table["routes"][0]["verifiers"],
                                                         "learned")
    assert (route.accept_greedy, route.budget_tokens) == (1e-4, 450)
    plain = argparse.Namespace(**{**vars(args), "mcts_accept_greedy": None, "mcts_budget": None})
    assert "mcts" not in router_table(plain, "learned", 360, fits)["routes"][0]
    assert "--mcts" not in command_flags(plain)
