#!/usr/bin/env python3
"""Checks that every repository path named in the tree exists.

Scans the text files of a source tree (Markdown, C, CMake, scripts, configs; build
directories, node_modules, .git and fuzz corpora are skipped) for names of files inside the
repository and fails if one does not resolve. A name is checked when it is
  - any word ending in `.md` (`docs/design.md`, `README-faults.md`, `DESIGN.md`), or
  - a path that starts with one of the tree's top-level folders (`server/limits.h`,
    `tests/integration/lib/h2fake.mjs`, `docs/`).
Markdown is read whole; in other files `.md` names are looked for everywhere and other paths
only in comments (`/* */`, `//`, `#`), so MQTT topics or run-time file names in code are
not mistaken for references. A name resolves if it exists relative to the tree's root or
to the folder of the file that names it (`../x` walks up from there), if it is generated
from `NAME.in`, or, without an extension, if a `NAME.*` exists (a module such as
`common/rn_conf` or a program built from `bench/zb_load.c`). A bare name that only finds the
naming file itself does not resolve (a DESIGN.md citing "DESIGN.md" cites nothing). Names
inside node_modules or a top-level build* folder are not checked (npm and the build make
them). A Markdown name followed by a section sign (`docs/design.md §5`, "`docs/x.md` §4")
must also have a heading with that number (`## 5. ...`).
URLs are ignored. A name that is not meant as a repository path can be written as a URL or
kept off a line by rewording; there is no allow-list on purpose.

Usage: check_refs.py [ROOT]   (default: the tree this script is in)
       check_refs.py --self-test
Exit status 0 when every name resolves, 1 with one line per bad name (file:line: name).
"""
import os
import re
import sys
import tempfile

SKIP_DIRS = {".git", "node_modules", "corpus", "__pycache__"}
GENERATED = {"node_modules", "__pycache__"}
TEXT_EXT = {
    ".md", ".c", ".h", ".in", ".txt", ".cmake", ".py", ".mjs", ".js", ".sh", ".conf",
    ".proto", ".service", ".yml", ".yaml", ".toml", ".json", ".cfg", ".ini", ".spec",
}
TEXT_NAMES = {"Makefile", "CMakeLists.txt", "Dockerfile"}

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
# A path token: segments of word characters, dots and dashes joined by slashes, optionally
# starting with ./ or ../ (not preceded by something that would make it part of a longer
# word, an absolute path or a URL).
TOKEN = re.compile(r"(?<![\w./:@~$%+=#-])((?:\.\.?/)*(?:[\w.-]+/)*[\w.-]*[\w-](?:/)?)")
MD = re.compile(r"\.md$")


def is_build_dir(path):
    return os.path.exists(os.path.join(path, "CMakeCache.txt"))


def text_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d in SKIP_DIRS or d.startswith(".") and d != ".ci":
                continue
            if rel == "." and d.startswith("build"):
                continue
            if os.path.islink(full) or is_build_dir(full):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            ext = os.path.splitext(f)[1]
            if ext in TEXT_EXT or f in TEXT_NAMES:
                yield os.path.join(dirpath, f)


def top_dirs(root):
    return {
        d for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
        and not d.startswith("build") and d not in SKIP_DIRS
    } | {".ci"}


C_LIKE = {".c", ".h", ".in", ".proto", ".mjs", ".js"}
HASH_LIKE = {".sh", ".py", ".cmake", ".conf", ".service", ".yml", ".yaml", ".toml", ".cfg",
             ".ini", ".spec", ".txt"}


def comments(path, lines):
    """Yields (line number, comment text of that line) for the file's language."""
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1]
    if ext in C_LIKE:
        block = False
        for n, line in enumerate(lines, 1):
            out, i = [], 0
            while i < len(line):
                if block:
                    j = line.find("*/", i)
                    out.append(line[i:] if j < 0 else line[i:j])
                    if j < 0:
                        break
                    block, i = False, j + 2
                else:
                    a, b = line.find("/*", i), line.find("//", i)
                    if b >= 0 and (a < 0 or b < a):
                        out.append(line[b + 2:])
                        break
                    if a < 0:
                        break
                    block, i = True, a + 2
            yield n, " ".join(out)
    elif ext in HASH_LIKE or name in TEXT_NAMES:
        for n, line in enumerate(lines, 1):
            m = re.search(r"(?:^|\s)#(.*)", line)
            yield n, m.group(1) if m else ""


SECTION = re.compile(r"^`?\)?,?\s*§\s*(\d+(?:\.\d+)*)")


def candidates(line, tops, md_only=False):
    """Yields (name, section or None) for each repository name on the line."""
    line = URL.sub(" ", line)
    for m in TOKEN.finditer(line):
        tok = m.group(1)
        tok = tok.rstrip(".-")
        if not tok:
            continue
        sec = SECTION.match(line[m.start(1) + len(tok):])
        sec = sec.group(1) if sec else None
        bare = tok
        while bare.startswith("./") or bare.startswith("../"):
            bare = bare.split("/", 1)[1]
        first = bare.split("/", 1)[0]
        parts = bare.rstrip("/").split("/")
        if first.startswith("build") or any(x in GENERATED for x in parts):
            continue  # made by the build or npm, absent from a fresh clone
        if MD.search(tok) and re.search(r"[\w-]\.md$", tok):
            yield tok, sec
        elif not md_only and "/" in bare and first in tops:
            yield tok, None


def has_section(path, sec):
    """Whether the Markdown file has a heading numbered `sec` ("## 5. ...", "### 8.1 ...")."""
    head = re.compile(r"^#+\s+%s\.?\s" % re.escape(sec))
    try:
        with open(path, encoding="utf-8") as f:
            return any(head.match(line) for line in f)
    except (UnicodeDecodeError, OSError):
        return False


def resolves(root, src, tok, sec=None):
    here = os.path.dirname(src)
    tries = [os.path.join(here, tok)]
    if not tok.startswith("."):
        tries.append(os.path.join(root, tok))
    for t in tries:
        t = os.path.normpath(t)
        if not (t == root or t.startswith(root + os.sep)):
            continue
        if os.path.exists(t):
            if "/" not in tok.rstrip("/") and os.path.samefile(t, src):
                continue  # a bare name finding only the file that names it
            return sec is None or has_section(t, sec)
        if os.path.exists(t + ".in"):
            return True
        base = os.path.basename(t)
        if "." not in base and os.path.isdir(os.path.dirname(t)):
            if any(f.startswith(base + ".") for f in os.listdir(os.path.dirname(t))):
                return True
    return False


def check(root):
    root = os.path.realpath(root)
    tops = top_dirs(root)
    me = os.path.realpath(__file__)
    bad = []
    for path in text_files(root):
        if os.path.realpath(path) == me:
            continue  # its own documentation and self-test name made-up files
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
        except (UnicodeDecodeError, OSError):
            continue
        rel = os.path.relpath(path, root)
        real = os.path.realpath(path)
        if path.endswith(".md"):
            scans = [(n, line, False) for n, line in enumerate(lines, 1)]
        else:
            scans = [(n, line, True) for n, line in enumerate(lines, 1)]
            scans += [(n, text, False) for n, text in comments(path, lines)]
        seen = set()
        for n, text, md_only in scans:
            for tok, sec in candidates(text, tops, md_only):
                if (n, tok) in seen:
                    continue
                seen.add((n, tok))
                if not resolves(root, real, tok, sec):
                    bad.append("%s:%d: %s" % (rel, n, tok + (" §" + sec if sec else "")))
    bad.sort(key=lambda b: (b.split(":")[0], int(b.split(":")[1])))
    return bad


def self_test():
    """The checker finds what it must and nothing else, on a small made-up tree."""
    with tempfile.TemporaryDirectory() as d:
        def put(p, text):
            full = os.path.join(d, p)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        put("README.md", "See `docs/design.md` and srv/README.md; https://x.org/a/Encodings.md\n")
        put("docs/design.md", "## 1. Layout\n`srv/wal/` (srv/wal/DESIGN.md, ../README.md).\n"
            "### 1.2 More\n")
        put("docs/cite.md", "See docs/design.md §1, `design.md` §1.2 and RFC 9113 §8.1.\n")
        put("srv/README.md", "Mechanism: `wal/DESIGN.md`, see also DESIGN.md.\n")
        put("srv/DESIGN.md", "Nothing else.\n")
        put("srv/wal/DESIGN.md", "Record format; the server: ../DESIGN.md.\n")
        put("srv/wal/wal.c", "/* see DESIGN.md; srv/wal/wal.h is not needed */\n")
        put("srv/wal/wal.h", "/* x */\n")
        put("srv/gen.c.in", "/* made into srv/gen.c by the build */\n")
        put("srv/load.c", "/* the program srv/load */\n")
        put("srv/run.sh", "mosquitto_pub -t srv/topic  # srv/load.c publishes\n")
        put("srv/CMakeLists.txt", "# npm puts srv/node_modules here; build/x.h too\n")
        put("build/x.md", "missing.md\n")
        assert check(d) == [], check(d)
        bad = [
            ("README.md", "See DESIGN.md §1.\n", "README.md:1: DESIGN.md §1"),
            ("srv/x.h", "/* zerobus-protocol.md §2.4 */\n",
             "srv/x.h:1: zerobus-protocol.md §2.4"),
            ("srv/y.c", "/* ../shared/reference/z.md */\n", "srv/y.c:1: ../shared/reference/z.md"),
            ("docs/a.md", "see `docs/nothere.md`.\n", "docs/a.md:1: docs/nothere.md"),
            ("docs/b.md", "see srv/limits.h\n", "docs/b.md:1: srv/limits.h"),
            ("srv/DESIGN.md", "DESIGN.md §4 wants\n", "srv/DESIGN.md:1: DESIGN.md §4"),
            ("srv/run.sh", "cp a srv/b  # srv/nothing.sh\n", "srv/run.sh:1: srv/nothing.sh"),
            ("docs/cite.md", "docs/design.md §2\n", "docs/cite.md:1: docs/design.md §2"),
            ("srv/z.h", "/* (docs/design.md §1.3) */\n", "srv/z.h:1: docs/design.md §1.3"),
            ("srv/z.c", "int x; // srv/nothing.h\n", "srv/z.c:1: srv/nothing.h"),
            ("srv/z.c", "/*\n * srv/gone.h\n */\n", "srv/z.c:2: srv/gone.h"),
        ]
        for path, text, want in bad:
            full = os.path.join(d, path)
            old = open(full).read() if os.path.exists(full) else None
            put(path, text)
            got = check(d)
            assert got == [want], (want, got)
            if old is None:
                os.remove(full)
            else:
                put(path, old)
        assert check(d) == []
    print("check_refs self-test: ok")
    return 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    bad = check(root)
    for b in bad:
        print(b)
    sys.stdout.flush()
    if bad:
        print("%d name(s) of repository files that do not exist" % len(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
