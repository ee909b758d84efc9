"""A small reader for SRS's nginx-like config: directives (`name args… ;`) and blocks
(`name args… { … }`), `#` comments, quoted strings. Used to check what we render against SRS's
own reference config, where every directive appears in its block context."""

from __future__ import annotations

from dataclasses import dataclass, field


class SrsConfigError(ValueError):
    """The text is not a well-formed SRS config; the message says where."""


@dataclass
class Directive:
    name: str
    args: list[str]
    line: int
    children: list[Directive] | None = None  # None: a plain directive; a list: a block

    def find(self, name: str) -> list[Directive]:
        return [child for child in self.children or [] if child.name == name]


@dataclass
class Config:
    directives: list[Directive] = field(default_factory=list)

    def find(self, name: str) -> list[Directive]:
        return [child for child in self.directives if child.name == name]

    def contexts(self) -> set[tuple[str, ...]]:
        """Every (enclosing block names…, directive name) path in the config."""
        found: set[tuple[str, ...]] = set()

        def walk(directives: list[Directive], path: tuple[str, ...]) -> None:
            for directive in directives:
                found.add((*path, directive.name))
                if directive.children is not None:
                    walk(directive.children, (*path, directive.name))

        walk(self.directives, ())
        return found


def _tokens(text: str):
    """(token, line) pairs; `{`, `}` and `;` are tokens of their own."""
    line, index, length = 1, 0, len(text)
    while index < length:
        char = text[index]
        if char == "\n":
            line += 1
            index += 1
        elif char.isspace():
            index += 1
        elif char == "#":
            while index < length and text[index] != "\n":
                index += 1
        elif char in "{};":
            yield char, line
            index += 1
        elif char in "\"'":
            end = text.find(char, index + 1)
            if end < 0:
                raise SrsConfigError(f"line {line}: unterminated quoted string")
            yield text[index + 1 : end], line
            line += text.count("\n", index, end)
            index = end + 1
        else:
            start = index
            while index < length and not text[index].isspace() and text[index] not in "{};#":
                index += 1
            yield text[start:index], line


def parse(text: str) -> Config:
    root: list[Directive] = []
    stack: list[list[Directive]] = [root]
    words: list[tuple[str, int]] = []
    for word, line in _tokens(text):
        if word == ";":
            if not words:
                raise SrsConfigError(f"line {line}: ';' without a directive")
            stack[-1].append(Directive(words[0][0], [w for w, _ in words[1:]], words[0][1]))
            words = []
        elif word == "{":
            if not words:
                raise SrsConfigError(f"line {line}: '{{' without a block name")
            block = Directive(words[0][0], [w for w, _ in words[1:]], words[0][1], [])
            stack[-1].append(block)
            stack.append(block.children)  # type: ignore[arg-type]
            words = []
        elif word == "}":
            if words:
                raise SrsConfigError(f"line {line}: directive {words[0][0]!r} lacks its ';'")
            if len(stack) == 1:
                raise SrsConfigError(f"line {line}: '}}' closes no block")
            stack.pop()
        else:
            words.append((word, line))
    if words:
        raise SrsConfigError(f"directive {words[0][0]!r} at line {words[0][1]} lacks its ';'")
    if len(stack) != 1:
        raise SrsConfigError("unbalanced braces: a block is never closed")
    return Config(root)
