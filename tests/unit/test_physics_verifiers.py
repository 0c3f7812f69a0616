"""The `units` and `physics` verifiers on hand-written steps, on 1000 generated worked
solutions of the physics task (no false zero), and on injected dimension errors (>= 99% caught);
the symbolic engine's computed steps."""

import random

import pytest

from training.tasks import physics as task
from verifiers.physics import laws, units
from verifiers.physics.fusion import computed_step
from verifiers.physics.notation import read_problem, unit
from verifiers.physics.options import PhysicsOptions, from_config
from verifiers.protocol import ScoringContext, StepItem

Q = "Physics: m=2000 g, u=1 m/s, v=7 m/s, t=3 s, d=5 m. Find W in J."
GOOD = ["m=2000 g=2 kg", "a=(v-u)/t=(7-1)/3=2 m/s^2", "F=m*a=2*2=4 N", "W=F*d=4*5=20 J",
        "Answer: 20 J"]


def item(steps, problem=Q):
    return StepItem(problem, tuple(steps), is_final=steps[-1].startswith("Answer"))


def test_a_correct_solution_scores_one_step_by_step():
    for i in range(len(GOOD)):
        assert units.score_item(item(GOOD[: i + 1])) == 1.0
        assert laws.score_item(item(GOOD[: i + 1])) == 1.0


@pytest.mark.parametrize("step", [
    "a=v-u+t=7-1+3=9 m/s^2",  # adds a velocity to a time
    "a=(v-u)/t=(7-1)/3=2 m/s",  # a formula of m/s^2 stated in m/s
    "a=(v-u)*t=(7-1)*3=18 m/s^2",  # the formula is a length
    "m=2000 g=2 m",  # a restated mass in metres
])
def test_dimension_errors_score_zero(step):
    steps = GOOD[:1] + [step] if not step.startswith("m=") else [step]
    assert units.score_item(item(steps)) == 0.0


def test_an_answer_in_the_wrong_dimension_scores_zero_and_a_right_one_in_other_units_one():
    assert units.score_item(item(GOOD[:4] + ["Answer: 20 N"])) == 0.0
    assert units.score_item(item(GOOD[:4] + ["Answer: 0.02 kJ"])) == 1.0


def test_a_wrong_number_scores_softly_and_the_tolerance_decides():
    wrong = units.score_item(item(GOOD[:2] + ["F=m*a=2*2=5 N"]))
    assert 0 < wrong <= units.SOFT_CAP
    assert units.score_item(item(GOOD[:2] + ["F=m*a=2*2=4.1 N"]), PhysicsOptions(0.05)) == 1.0
    assert units.score_item(item(GOOD[:2] + ["F=m*a=2*2=4.1 N"]), PhysicsOptions(0.01)) < 1.0
    assert units.score_item(item(["m=2000 g=3 kg"])) < 1.0  # a wrong conversion
    assert laws.score_item(item(GOOD[:2] + ["F=m*a=2*2=5 N"])) == 1.0  # numbers are not its job


@pytest.mark.parametrize("step", ["F=m/a=2/2=1 N", "F=m*a^2=2*4=8 N", "F=m+a=2+2=4 N"])
def test_a_formula_no_rule_allows_scores_zero_under_physics(step):
    assert laws.score_item(item(GOOD[:2] + [step])) == 0.0


def test_rule_sets_decide_which_formulas_are_judged():
    step = item(GOOD[:3])
    assert laws.score_item(step, PhysicsOptions(rules=("newton",))) == 1.0
    # without the newton rules F=m*a is a formula of quantities the circuits rules do not know
    assert laws.score_item(step, PhysicsOptions(rules=("circuits",))) == 1.0
    assert laws.score_item(item(GOOD[:2] + ["a=(v+u)/t=8/3=2 m/s^2"]),
                           PhysicsOptions(rules=("kinematics",))) == 0.0


def test_a_declared_conserved_quantity_must_keep_its_value():
    q = "Physics: m1=2 kg, u1=3 m/s, m2=1 kg, u2=0 m/s, conserve p. Find v in m/s."
    p = "p=m1*u1+m2*u2=2*3+1*0=6 kg*m/s"
    assert laws.score_item(item([p, "p2=(m1+m2)*v=3*2=6 kg*m/s"], q)) == 1.0
    assert laws.score_item(item([p, "p2=(m1+m2)*v=3*3=9 kg*m/s"], q)) == 0.0
    assert laws.same_quantity("pf", "p") and not laws.same_quantity("P", "p")


@pytest.mark.parametrize("answer", ["Answer: 20", "Answer: lots", "Answer: 8 v", "Answer: 20 kv"])
def test_an_answer_stating_no_quantity_it_reads_scores_zero_where_one_with_a_unit_is_asked(
        answer):
    assert units.score_item(item(GOOD[:4] + [answer])) == 0.0
    # a problem it cannot read asks for nothing it knows: neutral
    assert units.score_item(StepItem("Compute: 1+2", (answer,), is_final=True)) == 1.0


@pytest.mark.parametrize("text", ["", "hello", "x=", "=3", "a=(((", "Answer:",
                                  "v=u+a*t=3+2*4=11 blorps", "v=" + "1+" * 500 + "1 m/s",
                                  "v=u^99=1 m/s", "v=__import__('os')=1 m/s", "v=1/0=1 m/s"])
def test_a_step_it_cannot_read_is_neutral_and_never_raises(text):
    assert units.score_item(item([text])) == 1.0
    assert laws.score_item(item([text])) == 1.0
    assert computed_step(Q, [], text) is None
    assert units.score_item(StepItem("Compute: 1+2", (text,))) == 1.0


def test_1000_generated_worked_solutions_have_no_false_zero():
    worked = [w for level in task.LEVELS for w in task.generate_worked(11, 250, level)]
    assert len(worked) == 1000
    steps = 0
    for problem, solution in worked:
        lines = solution.split("\n")
        for i in range(len(lines)):
            scored = item(lines[: i + 1], problem.prompt)
            assert units.score_item(scored) == 1.0, (problem.prompt, lines[i])
            assert laws.score_item(scored) == 1.0, (problem.prompt, lines[i])
            steps += 1
    assert steps > 2500


UNITS = ("m", "s", "kg", "N", "J", "W", "m/s", "m/s^2", "A", "ohm", "kg*m/s", "V")


def inject_dimension_error(problem, line: str, rng: random.Random) -> str:
    """The step with its unit swapped for one of another dimension or, for a formula step
    (half the time), a given quantity of another dimension added to its formula."""
    head, _, unit = line.rpartition(" ")
    stated = dimension(unit)
    parts = line.split("=")
    if len(parts) >= 4 and rng.random() < 0.5:
        given = read_problem(problem.prompt).given
        other = [n for n, q in given.items() if q.dimensionality != stated]
        if other:
            parts[1] = f"{parts[1]}+{rng.choice(other)}"
            return "=".join(parts)
    return f"{head} {rng.choice([u for u in UNITS if dimension(u) != stated])}"


def dimension(text: str):
    return (1 * unit(text)).dimensionality


def test_injected_dimension_errors_are_caught_99_percent():
    rng = random.Random(3)
    worked = [w for level in task.LEVELS for w in task.generate_worked(12, 100, level)]
    caught = total = 0
    for problem, solution in worked:
        lines = solution.split("\n")
        i = rng.randrange(len(lines))
        broken = inject_dimension_error(problem, lines[i], rng)
        assert broken != lines[i]
        total += 1
        caught += units.score_item(item(lines[:i] + [broken], problem.prompt)) == 0.0
    assert total == 400 and caught / total >= 0.99, caught


def test_options_refuse_what_they_cannot_use():
    for bad, words in [({"tolerance": 0}, "(0, 1]"), ({"tolerance": 2}, "(0, 1]"),
                       ({"unit_system": "furlongs"}, "unknown unit system"),
                       ({"rules": ["alchemy"]}, "unknown physics rule set"),
                       ({"rules": []}, "at least one"), ({"speed": 1}, "unknown physics option")]:
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            from_config(bad)
    assert from_config({"tolerance": 0.1, "unit_system": "cgs", "rules": ["newton"]}) == \
        PhysicsOptions(0.1, "cgs", ("newton",))


async def test_the_verifiers_read_request_options_from_the_context():
    verifier = units.UnitsVerifier()
    near = [item(GOOD[:2] + ["F=m*a=2*2=4.1 N"])]
    assert (await verifier.score(near, ScoringContext()))[0] < 1.0
    assert await verifier.score(near, ScoringContext(extra={"physics": {"tolerance": 0.1}})) \
        == [1.0]
    assert verifier.cost == 0 and laws.PhysicsVerifier().cost == 0


def test_the_symbolic_engine_computes_the_stated_formula():
    assert computed_step(Q, GOOD[:2], "F=m*a=2*2=5 N") == "F=m*a=2*2=4 N"
    assert computed_step(Q, [], "m=2000 g=3 kg") == "m=2000 g=2 kg"
    assert computed_step(Q, GOOD[:4], "Answer: 21 J") == "Answer: 20 J"
    assert computed_step(Q, GOOD[:2], "F=m*a=2*2=4 N") is None  # already exact
    assert computed_step(Q, GOOD[:1], "F=m*a=2*2=4 N") is None  # a is not known yet
    assert computed_step(Q, GOOD[:2], "F=m+a=4 N") is None  # a dimension error has no value
    assert computed_step(Q, GOOD[:2], "F=m*a") == "F=m*a=2*2=4 kg*m/s^2"
    assert computed_step(Q, GOOD[:2], "F=m*a", PhysicsOptions(unit_system="cgs")) == \
        "F=m*a=2*2=400000 cm*g/s^2"
