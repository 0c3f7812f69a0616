"""A decomposed problem: a tree of parts. A part's question is its text with a slot where each
child's answer goes; the children are independent of one another (they run concurrently), and
the part runs once they have answered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    id: str  # "0" for the root, "0.1" for its second child, ...
    segments: tuple[str, ...]  # the text around the slots: len(children) + 1 pieces
    children: tuple[Part, ...] = ()

    def __post_init__(self) -> None:
        if len(self.segments) != len(self.children) + 1:
            raise ValueError("a part has one more text segment than it has children")

    @classmethod
    def leaf(cls, question: str, id: str = "0") -> Part:
        return cls(id, (question,))

    def question(self, answers: Sequence[str]) -> str:
        """The part's question with its children's answers in their slots."""
        if len(answers) != len(self.children):
            raise ValueError(f"part {self.id} needs {len(self.children)} answers")
        text = self.segments[0]
        for answer, segment in zip(answers, self.segments[1:]):
            text += answer + segment
        return text

    @property
    def depth(self) -> int:
        """Levels of decomposition below this part (0: it was not decomposed)."""
        return 1 + max(c.depth for c in self.children) if self.children else 0

    def walk(self) -> Iterator[Part]:
        """Every part, children before their parent (the order they answer in)."""
        for child in self.children:
            yield from child.walk()
        yield self
