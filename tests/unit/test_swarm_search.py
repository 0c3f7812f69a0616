"""The swarm's search-side parts (search/swarm/): decomposing a composite question into a tree
of parts, routing by a learned router or by declared skills, solving the tree (children
concurrently, one budget, a failing part degrading only its branch) and Self-MoA's vote."""

from __future__ import annotations

import asyncio

import pytest

from search.problem import Answer, SearchResult, SearchStats
from search.swarm import moa
from search.swarm.decomposers import Brackets, decompose, load_decomposers, slot_value
from search.swarm.plan import Part
from search.swarm.router import DeclaredRouter, LearnedRouter, ngram_features
from search.swarm.run import Solved, solve_tree
from training.components.swarm_router_fit import fit_router, routing_accuracy
from training.tasks import composite

COMPOSITE = "Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Compute: 17*3+48]"


def answer(text: str, score: float = 1.0, tokens: int = 5) -> Answer:
    return Answer(steps=tuple(text.splitlines()), text=text, score=score,
                  step_scores=(score,), verifier_scores={"logic": score},
                  step_verifier_scores=({"logic": score},), finish_reason="stop", tokens=tokens)


def result(*answers: Answer, tokens: int = 10, wall: float = 0.1) -> SearchResult:
    return SearchResult(list(answers), SearchStats(nodes=1, engine_calls=1,
                                                   generated_tokens=tokens, wall_s=wall))


# ---- decomposition --------------------------------------------------------------------------

def test_brackets_split_a_composite_into_independent_parts_under_their_parent():
    root = Brackets().decompose(COMPOSITE)
    assert [c.question([]) for c in root.children] == ["Compute: 2*4-1", "Compute: 17*3+48"]
    assert [c.id for c in root.children] == ["0.0", "0.1"]
    assert root.question(["7", "99"]) == "Numbers: 3 7 25 50 Target: 99"
    assert root.depth == 1
    assert [p.id for p in root.walk()] == ["0.0", "0.1", "0"]


def test_nested_brackets_are_deeper_and_a_plain_question_is_not_decomposed():
    root = Brackets().decompose("Compute: [Compute: [Compute: 1+2]*3]+4")
    assert root.depth == 2
    assert root.children[0].children[0].question([]) == "Compute: 1+2"
    assert Brackets().decompose("Compute: 1+2") is None
    decomposer, leaf = decompose("Compute: 1+2", load_decomposers())
    assert decomposer is None and leaf.question([]) == "Compute: 1+2" and leaf.depth == 0


@pytest.mark.parametrize("bad, says", [("Compute: [1+2", "never closed"),
                                       ("Compute: 1+2]", "unmatched"),
                                       ("Compute: []+2", "empty"),
                                       ("[" * 2000 + "x" + "]" * 2000, "2000 levels deep")])
def test_a_malformed_composite_says_what_is_wrong(bad: str, says: str):
    with pytest.raises(ValueError, match=says):
        Brackets().decompose(bad)


def test_integration_lists_each_part_under_its_question_the_whole_last():
    root = Brackets().decompose(COMPOSITE)
    text = Brackets().integrate(
        root, {"0.0": "Compute: 2*4-1", "0.1": "Compute: 17*3+48",
               "0": "Numbers: 3 7 25 50 Target: 99"},
        {"0.0": "2*4=8\n8-1=7\nAnswer: 7", "0.1": "17*3=51\n51+48=99\nAnswer: 99",
         "0": "50+25=75\n75-3=72\nAnswer: 72"})
    assert text.splitlines()[0] == "Compute: 2*4-1"
    assert text.splitlines()[-2:] == ["75-3=72", "Answer: 72"]


def test_the_composite_task_checks_the_resolved_countdown():
    (item,) = composite.generate(123, 1, 1)
    root = Brackets().decompose(item.problem.prompt)
    values = [p.answer for p in item.parts[::-1]]  # the number's bracket comes first in text
    assert root.question(values) == item.countdown.prompt
    from training.tasks import countdown
    solution = countdown.solution(item.countdown)
    assert composite.check(item, f"{item.countdown.prompt}\n{solution}")
    # the right solution under a wrongly resolved question does not count
    wrong = item.countdown.prompt.replace("Target: ", "Target: 1")
    assert not composite.check(item, f"{wrong}\n{solution}")


@pytest.mark.parametrize("answer, fills", [("245 kg*m/s", "245"), ("4 n", "4"),
                                           ("-3.5 m/s^2", "-3.5"), ("99", "99"),
                                           ("12 + 3", "12 + 3"), ("7x", "7x"), ("hello 5", "hello 5")])
def test_a_bracket_stands_for_a_value_a_quantity_fills_it_with_its_number(answer, fills):
    assert Brackets().fill(answer) == fills
    assert slot_value(Brackets(), answer) == fills
    assert slot_value(None, answer) == answer  # no decomposer (or one without fill): as stated


def test_a_physics_target_is_a_problem_whose_answer_number_is_the_countdown_target():
    from training.tasks import countdown, physics
    items = composite.generate(123, 3, target="physics")  # 3 s: the physics pools
    assert len({item.problem.id for item in items}) == 3
    for item in items:
        target, number = item.parts
        assert target.task == "physics" and number.task == "arithmetic"
        assert item.problem.prompt.endswith(f"Target: [{target.prompt}]")
        root = Brackets().decompose(item.problem.prompt)
        # the slots filled as the swarm fills them: the physics answer's number
        values = [Brackets().fill(number.answer), Brackets().fill(target.answer)]
        assert root.question(values) == item.countdown.prompt
        assert physics.check(target, physics.solution(target))
        solution = countdown.solution(item.countdown)
        assert composite.check(item, f"{item.countdown.prompt}\n{solution}")
    # the arithmetic workload is untouched by the option (the same problems as before it)
    assert composite.generate(123, 2) == composite.generate(123, 2, target="arithmetic")
    with pytest.raises(ValueError, match="target must be one of"):
        composite.generate(123, 1, target="chemistry")


def test_more_bracketed_numbers_are_more_independent_parts():
    (item,) = composite.generate(123, 1, numbers=3)
    root = Brackets().decompose(item.problem.prompt)
    assert len(root.children) == 4 and root.depth == 1  # three numbers and the target
    target, *numbers = item.parts
    assert [c.question([]) for c in root.children] == [n.prompt for n in numbers] + [target.prompt]
    assert root.question([n.answer for n in numbers] + [target.answer]) == item.countdown.prompt
    assert composite.generate(123, 1)[0].problem.prompt.count("[") == 2  # one number by default
    with pytest.raises(ValueError, match="numbers must be 1 to 3"):
        composite.generate(123, 1, numbers=4)


# ---- routing --------------------------------------------------------------------------------

def test_the_learned_router_sends_each_family_to_the_model_that_solved_it():
    questions = [f"Compute: {a}+{b}*3" for a in range(10) for b in range(3)]
    questions += [f"Numbers: {a} 7 25 Target: {b}" for a in range(10) for b in range(30, 33)]
    solved = {"arithmetic": [q.startswith("Compute") for q in questions],
              "countdown": [q.startswith("Numbers") for q in questions]}
    data = fit_router(questions, solved, (1, 2, 3), 256, steps=200)
    router = LearnedRouter.from_json(data)
    assert router.choose("Compute: 5+5*9", ["arithmetic", "countdown"]).model == "arithmetic"
    assert router.choose("Numbers: 2 4 50 Target: 77",
                         ["arithmetic", "countdown"]).model == "countdown"
    # only among the allowed: a model it does not know is never its pick
    assert router.choose("Compute: 5+5", ["countdown", "other"]).model == "countdown"
    assert router.choose("Compute: 5+5", ["other"]) is None
    chosen = [router.choose(q, ["arithmetic", "countdown"]).model for q in questions]
    assert routing_accuracy(chosen, solved) == 1.0


def test_training_declares_the_families_of_its_task_data():
    from training.components.skills import declared_skills

    skills = declared_skills(["arithmetic/6-8", None, "arithmetic", "countdown"], "long sums")
    assert skills["task_families"] == ["arithmetic", "countdown"]
    assert skills["description"] == "long sums"
    assert [e.split(":")[0] for e in skills["examples"]] == ["Compute", "Compute", "Numbers",
                                                             "Numbers"]


def test_a_router_file_without_its_fields_is_refused():
    with pytest.raises(ValueError, match="ngrams"):
        LearnedRouter.from_json({"models": {}})


def test_hashed_features_are_shares_that_sum_to_one():
    features = ngram_features("Compute: 1+2", (1, 2), 64)
    assert sum(features.values()) == pytest.approx(1.0)
    assert ngram_features("Compute: 1+2", (1, 2), 64) == features  # stable hashing


def test_declared_skills_pick_the_most_alike_declaration():
    router = DeclaredRouter({"arithmetic": "arithmetic\nCompute: 4*38+10",
                             "countdown": "countdown\nNumbers: 3 7 25 50 Target: 353"})
    assert router.choose("Compute: 9*9-1", ["arithmetic", "countdown"]).model == "arithmetic"
    assert router.choose("Numbers: 1 2 Target: 3", ["arithmetic", "countdown"]).model == \
        "countdown"
    # only among the allowed, and none when nothing declared is alike (the base answers)
    assert router.choose("Compute: 9*9-1", ["countdown"]) is None
    assert router.choose("Compute: 9*9-1", ["base", "arithmetic"]).model == "arithmetic"


# ---- solving the tree -----------------------------------------------------------------------

def solver(answers: dict[str, str], delay: float = 0.0, fail: set[str] = frozenset(),
           calls: list | None = None):
    async def solve(part: Part, question: str, tokens, seconds) -> Solved:
        if calls is not None:
            calls.append((part.id, question, tokens))
        await asyncio.sleep(delay)
        if question in fail:
            raise RuntimeError("specialist down")
        return Solved(part, question, "m", "greedy",
                      result(answer(f"x\nAnswer: {answers[question]}")))
    return solve


async def test_children_run_concurrently_and_the_parent_gets_their_answers():
    root = Brackets().decompose(COMPOSITE)
    answers = {"Compute: 2*4-1": "7", "Compute: 17*3+48": "99",
               "Numbers: 3 7 25 50 Target: 99": "99"}
    tree = await solve_tree(root, solver(answers, delay=0.2))
    assert tree.solved["0"].question == "Numbers: 3 7 25 50 Target: 99"
    assert tree.solved["0"].answer("auto") == "99"
    assert tree.wall_s < 0.55  # two levels of 0.2 s, not three
    a, b = tree.solved["0.0"], tree.solved["0.1"]
    assert max(a.started_s, b.started_s) < min(a.ended_s, b.ended_s)  # they overlapped
    sequential = await solve_tree(root, solver(answers, delay=0.2), concurrent=False)
    assert sequential.wall_s >= 0.6


async def test_a_childs_quantity_fills_its_slot_with_the_number_it_states():
    root = Brackets().decompose("Numbers: 2 3 Target: [Physics: v=3 m/s, t=4 s. Find d in m.]")
    answers = {"Physics: v=3 m/s, t=4 s. Find d in m.": "12 m", "Numbers: 2 3 Target: 12": "12"}
    tree = await solve_tree(root, solver(answers), fill=Brackets().fill)
    assert tree.solved["0.0"].answer("auto") == "12 m"
    assert tree.solved["0"].question == "Numbers: 2 3 Target: 12"


async def test_a_failing_part_degrades_its_branch_only():
    root = Brackets().decompose(COMPOSITE)
    answers = {"Compute: 17*3+48": "99", "Numbers: 3  25 50 Target: 99": "1"}
    tree = await solve_tree(root, solver(answers, fail={"Compute: 2*4-1"}))
    assert tree.solved["0.0"].error == "RuntimeError: specialist down"
    assert tree.solved["0.0"].result is None
    assert tree.solved["0.1"].answer("auto") == "99"
    assert tree.solved["0"].question == "Numbers: 3  25 50 Target: 99"  # went on without it


async def test_one_budget_is_shared_over_the_tree():
    root = Brackets().decompose(COMPOSITE)
    answers = {"Compute: 2*4-1": "7", "Compute: 17*3+48": "99",
               "Numbers: 3 7 25 50 Target: 99": "99"}
    calls: list = []
    await solve_tree(root, solver(answers, calls=calls), budget_tokens=90)
    shares = {part: tokens for part, _, tokens in calls}
    assert shares["0.0"] == shares["0.1"] == 30  # a third each while the root waits
    assert shares["0"] == 90 - 2 * 10  # what the children left (each spent 10)
    calls.clear()
    tree = await solve_tree(root, solver(answers, calls=calls), budget_tokens=2)
    # the first child's share is 0: not run; the second gets the 1 token left, overspends
    # it, and nothing is left for the root
    assert [(part, tokens) for part, _, tokens in calls] == [("0.1", 1)]
    assert tree.solved["0.0"].error == tree.solved["0"].error == "the token budget is spent"


async def test_cancelling_the_tree_cancels_the_parts_in_flight():
    root = Brackets().decompose(COMPOSITE)
    started, cancelled = [], []

    async def solve(part, question, tokens, seconds):
        started.append(part.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(part.id)
            raise

    task = asyncio.create_task(solve_tree(root, solve))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(started) == sorted(cancelled) == ["0.0", "0.1"]


# ---- Self-MoA -------------------------------------------------------------------------------

def test_self_moa_sums_the_verifier_scores_of_each_answer_across_runs():
    one = result(answer("Answer: 5", 0.6), answer("Answer: 7", 0.5))
    two = result(answer("Answer: 7", 0.4), answer("Answer: 5", 0.1), tokens=20)
    merged = moa.aggregate([one, two])
    assert [a.text for a in merged.answers] == ["Answer: 7", "Answer: 5"]  # 0.9 against 0.7
    assert merged.answers[0].score == 0.5  # represented by its best-scored solution
    assert merged.stats.generated_tokens == 30
    assert merged.details["self_moa"]["votes"] == {"7": 0.9, "5": 0.7}
