"""What the fixture chat models are trained to say: multi-line answers shaped like a real
chat model's, with a few phrasings per line so that sampled branches differ.

- `sum_question`: "What is 23 plus 45?" answered in steps separated by blank lines, one step an
  indented code block, one step a single line of over 64 tokens, ending "\\boxed{68}.";
- `capital_question`: "What is the capital of France?" answered in one line (free text: no
  number, no box);
- `think_question` (the thinking model only): "Think about 23 plus 45." answered as
  "<think>\\n...\\n</think>\\n\\n" then the boxed answer, as R1 distills and Qwen3 write;
- `weather_question` (the tool-calling model only): "What is the weather in Paris?" answered
  with one call of `WEATHER_TOOL` in the hermes format (`<tool_call>` JSON `</tool_call>`), as
  Hermes-2-Pro and Qwen2.5 write it.
"""

from __future__ import annotations

import json
import random

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
            "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Norway": "Oslo"}

OPENINGS = ["We add {a} and {b} step by step.", "Let us add {a} and {b} one step at a time.",
            "We need the sum of {a} and {b}."]
PROGRAMS = ["First, we write the sum as a short program:", "First, the sum as code:"]
# One line of well over 64 tokens (the old per-step cap), in two phrasings.
LONG_STEPS = [
    "Next, we check the result by hand: we add the ones digits of the two numbers first, "
    "and when they make ten or more we carry one to the tens, then we add the tens digits "
    "together with anything we carried, and the digits we wrote down, read from the left to "
    "the right, give the same total that the short program above prints for {a} and {b}.",
    "Next, we check the result by hand: the ones digits of {a} and {b} are added first, a one "
    "is carried to the tens when they reach ten or more, and then the tens digits are added "
    "together with what was carried, so that the digits written down, read from the left to "
    "the right, give the same total as the short program above.",
]
CLOSINGS = ["So the answer is \\boxed{{{s}}}.", "The answer is \\boxed{{{s}}}."]
THOUGHTS = [["We add {a} and {b}.", "The ones digits come first, then the tens."],
            ["The sum of {a} and {b} is wanted.", "Adding the tens and the ones gives it."]]


def sum_question(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 89), rng.randint(10, 89)
    steps = [rng.choice(OPENINGS),
             rng.choice(PROGRAMS) + "\n\n    total = {a} + {b}\n    print(total)",
             rng.choice(LONG_STEPS), rng.choice(CLOSINGS)]
    return (f"What is {a} plus {b}?",
            "\n\n".join(steps).format(a=a, b=b, s=a + b))


def capital_question(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(CAPITALS))
    return (f"What is the capital of {country}?",
            f"The capital of {country} is {CAPITALS[country]}.")


def think_question(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 89), rng.randint(10, 89)
    thought = "\n\n".join(rng.choice(THOUGHTS)).format(a=a, b=b)
    return (f"Think about {a} plus {b}.",
            f"<think>\n{thought}\n</think>\n\n" + rng.choice(CLOSINGS).format(s=a + b))


# The tool the tool-calling model was trained with (OpenAI's `tools` entry).
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def weather_question(rng: random.Random) -> tuple[str, str]:
    city = rng.choice(sorted(CAPITALS.values()))
    call = json.dumps({"name": "get_weather", "arguments": {"city": city}})
    return f"What is the weather in {city}?", f"<tool_call>\n{call}\n</tool_call>"


def conversations(count: int, seed: int, thinking: bool, tools: bool = False
                  ) -> list[tuple[str, str]]:
    """(user message, assistant reply) pairs: sums, capitals, (thinking) thoughts and (tools)
    tool calls."""
    rng = random.Random(seed)
    kinds = [sum_question, sum_question, capital_question] + ([think_question] if thinking else [])
    kinds += [weather_question, weather_question] if tools else []
    return [rng.choice(kinds)(rng) for _ in range(count)]
