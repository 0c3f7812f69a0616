"""Greedy accuracy of a model on fresh demo problems, per difficulty bucket, with vLLM offline.

    VLLM_CPU_KVCACHE_SPACE=1 python -m training.evaluate --model models/demo/base --count 500 \\
        --seed 7 [--json results.json] [--adapter NAME=PATH ...]

With adapters, the same problems are also solved by each adapter, and a comparison table
(bucket x model) follows the base model's tables.

Buckets: arithmetic with 1-2, 3-5 and 6-8 operations, and countdown (levels 1-5); each bucket's
`count` problems are split evenly over its levels. Seeds must be in the `evaluation` stream of
training/components/seeds.py (below 1_000_000), which no training recipe draws from.
"""

from __future__ import annotations

import argparse
import json
import time

from training.components.config import parse_with_config
from training.components.offline_llm import make_llm
from training.components.seeds import SEED_RANGES, is_evaluation_seed
from training.components.task_eval import bucket_problems, comparison, markdown, score
from training.tasks import completion_prompt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--count", type=int, default=500, help="problems per bucket")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--samples", type=int, default=0,
                        help="print this many completions per bucket, for a look")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH",
                        help="also evaluate this LoRA adapter on the same problems")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    if not is_evaluation_seed(args.seed):
        parser.error(f"--seed must be below {SEED_RANGES['evaluation'].stop}: higher seeds make "
                     "training data")
    from vllm import SamplingParams  # slow import, after argument errors
    from vllm.lora.request import LoRARequest

    problems = bucket_problems(args.count, args.seed)
    lora = {"enable_lora": True, "max_lora_rank": 16, "max_loras": 1} if args.adapter else {}
    llm = make_llm(args.model, max_model_len=512, seed=0, **lora)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    flat = [p for items in problems.values() for p in items]
    by_model = {}
    for i, spec in enumerate(args.adapter, start=1):
        name, _, path = spec.partition("=")
        outputs = llm.generate([completion_prompt(p) for p in flat], params,
                               lora_request=LoRARequest(name, i, path))
        texts = iter(o.outputs[0].text for o in outputs)
        by_model[name] = score(problems, {b: [next(texts) for _ in v] for b, v in problems.items()})
    start = time.time()
    outputs = llm.generate([completion_prompt(p) for p in flat], params)
    texts = iter(o.outputs[0].text for o in outputs)
    completions = {b: [next(texts) for _ in items] for b, items in problems.items()}
    seconds = time.time() - start

    results = score(problems, completions)
    results.update(model=args.model, count=args.count, seed=args.seed,
                   generate_seconds=round(seconds, 1))
    for bucket, items in problems.items():
        for p, c in list(zip(items, completions[bucket]))[: args.samples]:
            print(f"--- {p.prompt} (answer {p.answer})\n{c}")
    print(markdown(results))
    print(f"\n{len(flat)} problems, greedy, generated in {seconds:.0f} s")
    if by_model:
        results["adapters"] = by_model
        print("\n" + comparison({"base": results, **by_model}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
