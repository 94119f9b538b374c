#!/usr/bin/env python3
"""Rewrites Rust code written against kappalog's old flat API to the curated one.

Usage: tools/migrate_api.py FILE.rs...   (then `cargo fmt`, `cargo build --all-targets`)

- `use kappalog::{..}` / `kappalog::Name` / `crate::Name` (in src/): moved names get their module.
- `RecordMetadata` -> `Appended`; `GroupCoordinator::open(&x)` -> `x.groups()`.
- Struct literals of the `#[non_exhaustive]` configs outside the crate (StoreConfig, TopicConfig,
  ViewsConfig, ConsumerConfig) become setter chains: `TopicConfig { a: x, ..TopicConfig::default() }`
  -> `TopicConfig::default().a(x)`.
Left to the compiler: `Topic::append` takes `&[NewRecord]` (was `Vec`), and the per-record result's
`offset` is `base_offset` (the type is now `Appended`).
"""
import re
import sys

MOVED = {}
for module, names in {
    "cleaner": "CleanerStats CompactionReport RetentionReport TopicCompactionReport TopicRetentionReport",
    "clock": "Clock ManualClock SystemClock",
    "limits": "TOPIC_NAME_LEN_MAX PARTITIONS_MAX BATCH_BYTES_MAX BATCH_RECORDS_MAX SEGMENT_BYTES_MIN "
    "SEGMENT_BYTES_MAX SEGMENT_BYTES_DEFAULT SEGMENT_MS_DEFAULT MAX_MESSAGE_BYTES_DEFAULT "
    "INDEX_INTERVAL_BYTES_DEFAULT RETENTION_MS_DEFAULT DELETE_RETENTION_MS_DEFAULT "
    "MIN_CLEANABLE_DIRTY_RATIO_DEFAULT CLEANER_INTERVAL_MS_DEFAULT OFFSET_MAP_BYTES_DEFAULT "
    "OFFSET_MAP_BYTES_MIN validate_topic_name FORMAT_VERSION INTERNAL_TOPIC_PREFIX",
    "fault": "FaultInjector FaultKind SwapHook",
    "groups": "AssignmentStrategy AutoOffsetReset CommittedOffset GroupCoordinator GroupDescription GroupError "
    "GroupState JoinRequest MemberDescription Membership PartitionLag ResetEntry ResetPlan ResetRequest "
    "ResetStrategy TopicPartition",
    "log": "PartitionStats ReadBatch RecordRef SegmentInfo",
    "partitioner": "murmur2 partition_for_key",
    "stream": "KeyResult RebuildFrom ViewError ViewLogic ViewRunState ViewStatus WindowResult",
}.items():
    for n in names.split():
        MOVED[n] = module
RENAMED = {"RecordMetadata": "Appended"}
CONFIGS = ["StoreConfig", "TopicConfig", "ViewsConfig", "ConsumerConfig"]


def split_top(s, sep=","):
    """Splits `s` at top-level `sep` (outside brackets and strings)."""
    out, depth, cur, i, in_str = [], 0, [], 0, None
    while i < len(s):
        c = s[i]
        if in_str:
            cur.append(c)
            if c == "\\":
                cur.append(s[i + 1])
                i += 1
            elif c == in_str:
                in_str = None
        elif c == '"':
            in_str = c
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif c == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur))
    return out


def matching(s, open_at):
    """The index of the bracket closing the one at `open_at`."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack, i, in_str = [], open_at, None
    while i < len(s):
        c = s[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == in_str:
                in_str = None
        elif c == '"':
            in_str = c
        elif c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return i
        i += 1
    raise ValueError("unbalanced")


def flatten(tree, prefix=""):
    """`a::{b, c::{d}}` -> ['a::b', 'a::c::d']."""
    out = []
    for item in split_top(tree):
        item = " ".join(item.split())
        if not item:
            continue
        if item.endswith("}") and "{" in item:
            head, rest = item.split("{", 1)
            out += flatten(rest[:-1], prefix + head.strip())
        else:
            out.append(prefix + item)
    return out


def map_path(path):
    """A path below the crate root (`Name`, `Name as X`, `groups::X`) to its new one."""
    name, alias = (path.split(" as ", 1) + [None])[:2]
    name = name.strip()
    first = name.split("::")[0]
    if first in RENAMED:
        name = RENAMED[first] + name[len(first):]
    elif first in MOVED:
        name = MOVED[first] + "::" + name
    return name + (f" as {alias.strip()}" if alias else "")


def rewrite_uses(text, root):
    """`use ROOT::{..};` and `use ROOT::X;` statements."""
    pattern = re.compile(r"\buse\s+" + root + r"::")
    out, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() < pos:
            continue
        end = text.index(";", m.end())
        body = text[m.end():end]
        line_start = text.rfind("\n", 0, m.start()) + 1
        prefix = text[line_start:m.start()]
        if body.lstrip().startswith("{"):
            start = text.index("{", m.end())
            close = matching(text, start)
            end = text.index(";", close)
            inner = text[start + 1:close]
            if "//" in prefix:
                # A doc example: drop the comment markers of its continuation lines.
                inner = re.sub(r"\n\s*//[!/]?", "\n", inner)
            paths = flatten(inner)
        else:
            paths = [" ".join(body.split())]
        if all(map_path(p) == p for p in paths):
            continue
        paths = [map_path(p) for p in paths]
        # Keep the order, drop duplicates.
        seen, uniq = set(), []
        for p in paths:
            if p not in seen:
                seen.add(p)
                uniq.append(p)
        # `groups::A, groups::B` -> `groups::{A, B}`.
        heads = {}
        for p in uniq:
            head, _, rest = p.partition("::")
            if rest and " as " not in head:
                heads.setdefault(head, []).append(rest)
        items = []
        for p in uniq:
            head, _, rest = p.partition("::")
            if rest and head in heads and (heads[head] is None or len(heads[head]) > 1):
                if heads[head] is not None:
                    items.append(head + "::{" + ", ".join(heads[head]) + "}")
                    heads[head] = None
            else:
                items.append(p)
        joined = items[0] if len(items) == 1 else "{" + ", ".join(items) + "}"
        out.append(text[pos:m.start()])
        out.append(f"use {root}::{joined}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def rewrite_inline(text, root):
    names = "|".join(sorted(list(MOVED) + list(RENAMED), key=len, reverse=True))
    pattern = re.compile(r"(?<![\w:])" + root + r"::(" + names + r")\b")
    return pattern.sub(lambda m: f"{root}::{map_path(m.group(1))}", text)


def rewrite_config_literals(text):
    names = "|".join(CONFIGS)
    pattern = re.compile(r"(?<![\w])((?:kappalog::)?(?:\w+::)*)(" + names + r")\s*\{")
    out, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() < pos:
            continue
        before = text[max(0, m.start() - 12):m.start()]
        if re.search(r"(struct|impl|for|enum|->)\s*$", before):
            continue
        start = m.end() - 1
        close = matching(text, start)
        entries = [e.strip() for e in split_top(text[start + 1:close])]
        entries = [e for e in entries if e]
        base = f"{m.group(1)}{m.group(2)}::default()"
        calls = []
        for e in entries:
            if e.startswith(".."):
                b = e[2:].strip()
                if b not in ("Default::default()", f"{m.group(2)}::default()", f"{m.group(1)}{m.group(2)}::default()"):
                    base = b if re.fullmatch(r"[\w.:()&]+", b) else f"({b})"
                    base = base.lstrip("&") if not base.startswith("(") else base
                continue
            if ":" in e.split("(")[0] and not e.split(":", 1)[0].strip().endswith(":"):
                field, expr = e.split(":", 1)
            else:
                field, expr = e, e
            calls.append(f".{field.strip()}({expr.strip()})")
        out.append(text[pos:m.start()])
        out.append(base + "".join(calls))
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


def main():
    for path in sys.argv[1:]:
        text = open(path).read()
        new = text
        in_crate = path.startswith("src/") or "/src/" in path
        if in_crate:
            new = rewrite_uses(new, "crate")
            new = rewrite_inline(new, "crate")
        new = rewrite_uses(new, "kappalog")
        new = rewrite_inline(new, "kappalog")
        new = re.sub(r"\bRecordMetadata\b", "Appended", new)
        new = re.sub(r"(?<![\w:])(?:\w+::)*GroupCoordinator::open\(&([\w.]+(?:\(\))?)\)", r"\1.groups()", new)
        if not in_crate:
            new = rewrite_config_literals(new)
        if new != text:
            open(path, "w").write(new)
            print(path)


if __name__ == "__main__":
    main()
