"""One search's working state, shared by every strategy: the tree, the sampler, the scorer,
the budget; expanding and finishing nodes (scored as they are made); the result."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from search.answers import answer_key, extract_answer, vote
from search.budget import Budget
from search.confidence import answer_signals, vote_agreement
from search.params import SearchParams
from search.problem import Answer, SearchProblem, SearchResult, SearchStats
from search.sampler import Sample, Sampler, before_stop
from search.symbolic import step_text, symbolic_steps
from search.tree import Node, Tree
from engine.protocol import Engine
from verifiers.aggregation import aggregate_path
from verifiers.disagreement import disagreement, verifier_kind
from verifiers.protocol import StepItem
from verifiers.scorer import Scorer


class SearchRun:
    def __init__(self, problem: SearchProblem, engine: Engine, scorer: Scorer,
                 params: SearchParams) -> None:
        self.problem = problem
        self.params = params
        self.scorer = scorer
        self.stats = SearchStats()
        self.budget = Budget(params, self.stats)
        self.sampler = Sampler(engine, problem, params, self.stats, self.budget)
        self.tree = Tree()
        self._best_reported: str | None = None
        self._trace_sent: dict[int, dict] = {}  # node id -> its entry as last sent (on_trace)
        self._confident: set[str] = set()  # answers of finished paths scoring stop_score
        # node id -> its greedy completion: every node along a greedy completion has that same
        # completion, so asking again would only generate it twice and add the path twice
        self._greedy_end: dict[int, Node] = {}
        self._started = time.monotonic()

    def carry(self, before: SearchRun) -> None:
        """Counts an earlier run's work on this problem as this run's (its tokens against the
        budget, its calls and time in the stats): one request, two searches."""
        for name in ("nodes", "engine_calls", "generated_tokens", "busy_s"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(before.stats, name))
        self._started = min(self._started, before._started)

    # --- growing the tree -------------------------------------------------------------------

    async def expand(self, node: Node, k: int) -> list[Node]:
        """k sampled next steps of `node` (one engine request), scored; duplicates merged."""
        (children,) = await self.expand_many([node], k)
        return children

    async def expand_many(self, nodes: Sequence[Node], k: int) -> list[list[Node]]:
        """`expand` for several nodes: their requests run together (the engine batches them),
        then all the new steps are scored in one batch."""
        sampled = await asyncio.gather(*(self.sampler.sample_steps(n.path_ids(), k)
                                         for n in nodes))
        children = [self._add(node, samples) for node, samples in zip(nodes, sampled)]
        if self.params.symbolic_steps:
            children = [group + self._add_symbolic(node, group)
                        for node, group in zip(nodes, children)]
        await self.score([c for group in children for c in group])
        self.report()
        return children

    async def finish(self, node: Node) -> Node:
        """The path through `node`, completed greedily and scored; `node` itself if it is final
        already or the token budget is spent. Known completions are reused: one that passed
        through `node` (a rollout from an ancestor) is its completion too."""
        if node.id in self._greedy_end:
            return self._greedy_end[node.id]
        if node.final or node.truncated or self.budget.tokens_left() == 0:
            return node
        ends = await self.complete_many(node, 1, temperature=0.0)
        if not ends:  # the model ended right there
            node.final = True
            return node
        end = ends[0]
        along: Node | None = end
        while along is not None and along is not node:
            self._greedy_end[along.id] = end
            along = along.parent
        self._greedy_end[node.id] = end
        return end

    async def complete_many(self, node: Node, n: int,
                            temperature: float | None = None) -> list[Node]:
        """n completions of `node` in one request (sampled at the search's temperature unless
        given), each added as a chain of scored steps; empty completions add nothing."""
        samples = await self.sampler.finish(
            node.path_ids(), n=n,
            temperature=self.params.temperature if temperature is None else temperature)
        ends = []
        for sample in samples:
            if sample.steps:
                ends.append(self.tree.add_path(node, sample.steps, final=sample.final,
                                               truncated=sample.truncated, tokens=sample.tokens,
                                               stop=sample.stop))
                self.stats.nodes += len(sample.steps)
        await self.score([n_ for end in ends for n_ in end.lineage() if n_.score is None])
        self.report()
        return ends

    def _add(self, node: Node, samples: list[Sample]) -> list[Node]:
        """New children for the distinct sampled steps; a repeat adds nothing."""
        existing = {c.step: c for c in node.children}
        new: list[Node] = []
        for sample in samples:
            self.stats.nodes += 1
            if not sample.steps:
                # Nothing but the end of the solution: the path ends at `node`.
                node.final = node.final or (sample.final and node.parent is not None)
                continue
            (step,) = sample.steps
            if step.text in existing:
                continue
            # a path that used up the answer's max_tokens ends here, cut
            full = not sample.final and self.sampler.answer_room(
                node.path_ids() + step.token_ids) <= 0
            child = self.tree.add(node, step.text, token_ids=step.token_ids,
                                  confidences=step.confidences, final=sample.final,
                                  truncated=sample.truncated or full, tokens=sample.tokens,
                                  stop=sample.stop)
            existing[step.text] = child
            new.append(child)
        return new

    def _add_symbolic(self, node: Node, children: list[Node]) -> list[Node]:
        """The symbolic engine's computed steps for `children` (the model's new steps under
        `node`), as siblings of theirs; none that is already a child."""
        existing = {c.step for c in node.children}
        new = []
        for i, text in symbolic_steps(self.problem, node.steps(), [c.step for c in children]):
            if text in existing:
                continue
            model = children[i]
            ids = self.sampler.engine.encode(step_text(self.problem, text, model.final),
                                             add_special_tokens=False)
            new.append(self.tree.add(node, text, token_ids=tuple(ids), final=model.final,
                                     symbolic=True))
            existing.add(text)
        self.stats.symbolic_steps += len(new)
        return new

    def should_stop(self) -> bool:
        """A budget ran out, or `stop_score` is reached: n_answers distinct answers have
        finished paths that score at least it (good enough; the rest of the budget is saved).
        The reason is kept in the stats."""
        if self.budget.stop_reason() is not None:
            return True
        if len(self._confident) >= max(self.params.n_answers, 1):
            self.stats.stopped_by = self.stats.stopped_by or "stop_score"
            return True
        return False

    async def score(self, nodes: Sequence[Node]) -> None:
        """Scores the last step of each node's path, all in one batch per verifier."""
        nodes = [n for n in nodes if n.score is None]
        if not nodes:
            return
        items = [StepItem(problem=self.problem.question, steps=n.steps(), is_final=n.final)
                 for n in nodes]
        with self.sampler.engine_work():
            batch = await self.scorer.score(items, self.problem.context)
        for i, node in enumerate(nodes):
            node.score = batch.combined[i]
            node.verifier_scores = {name: s[i] for name, s in batch.per_verifier.items()
                                    if i not in batch.skipped.get(name, ())}
        threshold = self.params.stop_score
        if threshold is not None:
            self._confident.update(
                self.answer_key(n) for n in nodes
                if n.final and n.path_score(self.params.aggregation) >= threshold)

    # --- choosing -----------------------------------------------------------------------------

    def rank_key(self, node: Node) -> float:
        return node.path_log_score(self.params.aggregation)

    def best(self, nodes: Sequence[Node]) -> Node | None:
        return max(nodes, key=self.rank_key, default=None)

    def vote(self, ends: Sequence[Node], weight: Callable[[Node], float]) -> list[Node]:
        """`search.answers.vote` over the solutions' stated answers, representatives and ties
        by path score."""
        extractor = self.problem.answer_extractor
        return vote(ends, lambda end: extract_answer(self.text(end), extractor), weight,
                    self.rank_key)

    def finals(self) -> list[Node]:
        return [n for n in self.tree.nodes if n.final and n.parent is not None]

    def report(self) -> None:
        """Tells the observers the nodes made or changed since the last report, and the best
        path so far, when it changed."""
        if self.problem.on_trace is not None:
            self._report_trace()
        if self.problem.on_progress is None:
            return
        node = self.best(self.finals()) or self.best(self.tree.nodes[1:])
        text = self.text(node) if node is not None else ""
        if text and text != self._best_reported:
            self._best_reported = text
            self.problem.on_progress(text)

    def _report_trace(self) -> None:
        changed = [entry for entry in self.tree.trace()
                   if self._trace_sent.get(entry["id"]) != entry]
        for entry in changed:
            self._trace_sent[entry["id"]] = entry
        if changed:
            self.problem.on_trace(changed)

    # --- the result ---------------------------------------------------------------------------

    def text(self, node: Node) -> str:
        """The path's generated ids as text, exactly; up to the request's stop string when one
        ended it (a stop string is not part of the answer, as in a single pass)."""
        return before_stop(self.sampler.engine.decode(node.path_ids()), node.stop)

    def answer_key(self, node: Node) -> str:
        """What makes two solutions the same answer, for `n` distinct answers and for
        stop_score: the stated answer, or the whole text when it states none."""
        return answer_key(self.text(node), self.problem.answer_extractor)

    async def conclude(self, candidates: Sequence[Node], n: int = 1,
                       in_order: bool = False) -> SearchResult:
        """The best `n` distinct answers among `candidates` (by path score, or in the order
        given when `in_order`). An unfinished candidate is finished greedily (one request,
        even after a timeout: an answer beats none) unless the token budget is spent; then it
        is returned as it is, with finish_reason "length".

        With `selection="weighted_vote"` the finished candidates vote (`vote`, weighted by path
        score) unless `in_order`; when none states an answer, the best path wins. A node given
        twice (a finished path both kept and among `finals()`) counts once."""
        candidates = list(dict.fromkeys(candidates))
        if not in_order and self.params.selection == "weighted_vote":
            how = self.params.aggregation
            voted = self.vote([c for c in candidates if c.final],
                              weight=lambda end: end.path_score(how))
            candidates, in_order = (voted, True) if voted else (candidates, False)
        ranked = list(candidates) if in_order else sorted(candidates, key=self.rank_key,
                                                          reverse=True)
        chosen: list[tuple[Answer, Node]] = []
        seen: set[str] = set()
        for node in ranked:
            if not node.final:
                node = await self.finish(node)
            answer = self.answer(node)
            key = self.answer_key(node)
            if key in seen:
                continue
            seen.add(key)
            chosen.append((answer, node))
            if len(chosen) == n:
                break
        if not chosen:  # nothing was generated at all (a budget of zero)
            chosen.append((self.answer(self.tree.root), self.tree.root))
        if not in_order:
            chosen.sort(key=lambda pair: _log(pair[0].score), reverse=True)
        disagree = await self.disagreement(chosen[0][1])
        self.stats.wall_s = time.monotonic() - self._started
        details = {}
        if self.params.symbolic_steps:
            details["symbolic_steps"] = {
                "proposed": self.stats.symbolic_steps,
                "in_answer": sum(n.symbolic for n in chosen[0][1].lineage())}
        return SearchResult(answers=[answer for answer, _ in chosen], stats=self.stats,
                            verifier_errors=dict(self.scorer.errors),
                            trace=self.tree.trace() if self.params.return_trace else None,
                            answer_nodes=[node.id for _, node in chosen],
                            verifier_disagreement=disagree,
                            details={**details, **self.context_details(chosen[0][1])})

    def context_details(self, best: Node) -> dict[str, dict]:
        """A chunked search's `context` section: its settings, the chunks the answer's path
        spans, and what the requests held (SearchStats)."""
        chunker = self.sampler.chunker
        if chunker is None:
            return {}
        c = chunker.chunking
        return {"context": {
            "chunk_tokens": c.chunk_tokens, "carry": c.carry, "carry_tokens": c.carry_tokens,
            "max_chunks": c.max_chunks, "chunks": chunker.chunks(best.path_ids()),
            "peak_kv_tokens": self.stats.peak_kv_tokens,
            "max_context_tokens": self.stats.max_context_tokens}}

    async def disagreement(self, node: Node) -> dict | None:
        """Whether the learned and the exact verifiers disagree strongly on the path to `node`
        (`verifiers.disagreement`). Steps the gate kept from a verifier are scored by it now,
        on this one path: the gate skips a learned verifier exactly where an exact one said
        no, which is where their disagreement would show."""
        threshold = self.params.disagreement_threshold
        lineage = node.lineage()
        kinds = {name: verifier_kind(v) for name, v in self.scorer.verifiers.items()}
        if threshold is None or not lineage or not {"learned", "exact"} <= set(kinds.values()):
            return None
        scores = [dict(n.verifier_scores) for n in lineage]
        items = [StepItem(problem=self.problem.question, steps=n.steps(), is_final=n.final)
                 for n in lineage]
        missing = {name: [i for i, s in enumerate(scores) if name not in s]
                   for name, kind in kinds.items() if kind and name not in self.scorer.errors}
        missing = {name: where for name, where in missing.items() if where}
        with self.sampler.engine_work():
            found = await asyncio.gather(*(
                self.scorer.judge(name, [items[i] for i in where], self.problem.context)
                for name, where in missing.items()))
        for (name, where), values in zip(missing.items(), found):
            for i, value in zip(where, values or ()):
                scores[i][name] = value
        how = self.params.aggregation
        path = {name: aggregate_path([s[name] for s in scores if name in s], how)
                for name, kind in kinds.items()
                if kind and name not in self.scorer.errors and any(name in s for s in scores)}
        return disagreement(path, kinds, threshold)

    def agreement(self, node: Node) -> float | None:
        """The share of the finished paths that state `node`'s answer, each weighted as the
        vote weighs it (its path score under `selection="weighted_vote"`, else one): the vote's
        own agreement where the strategy votes, the paths' where it does not. None with fewer
        than two finished paths (one path agrees with itself and says nothing)."""
        finals = self.finals()
        if len(finals) < 2:
            return None
        weighted = self.params.selection == "weighted_vote"
        weights: dict[str, float] = {}
        for end in finals:
            key = self.answer_key(end)
            weights[key] = weights.get(key, 0.0) + (
                end.path_score(self.params.aggregation) if weighted else 1.0)
        return vote_agreement(weights, self.answer_key(node))

    def answer(self, node: Node) -> Answer:
        lineage = node.lineage()
        how = self.params.aggregation
        score = node.path_score(how)
        names = {name for n in lineage for name in n.verifier_scores}
        per_verifier = {name: aggregate_path([n.verifier_scores[name] for n in lineage
                                              if name in n.verifier_scores], how)
                        for name in sorted(names)}
        return Answer(
            steps=node.steps(), text=self.text(node), token_ids=node.path_ids(),
            score=score, step_scores=tuple(node.step_scores()),
            verifier_scores=per_verifier,
            step_verifier_scores=tuple(dict(n.verifier_scores) for n in lineage),
            finish_reason="stop" if node.final and not node.truncated else "length",
            tokens=sum(n.tokens for n in lineage),
            signals=answer_signals(node.path_confidences(), self.params.confidence_window,
                                   self.params.confidence_tail, self.agreement(node),
                                   score if lineage else None))


def _log(score: float) -> float:
    return math.log(score) if score > 0 else -math.inf
