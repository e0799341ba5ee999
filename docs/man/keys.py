#!/usr/bin/env python3
"""The key reference of the config man pages, from `runnel-agent -H` / `runnel-server -H`.

  keys.py < HELP_TEXT              print the KEYS section in scdoc syntax (to paste into
                                   runnel-agent.conf.5.scd or runnel-server.conf.5.scd)
  keys.py --check PAGE < HELP_TEXT exit 1 naming every key of the help text that PAGE does
                                   not describe exactly as the section above would (name,
                                   type, help, default and range), so a page cannot go stale

A key is named with its groups: agent.data_dir, sources.routes.match; a plugin's keys
(after "sources entry with type = ...") by their own name, under a heading per plugin.
"""
import re
import sys

TYPES = ['list of groups', 'string list', 'group', 'string', 'enum', 'size', 'URL',
         'integer', 'duration', 'bool', 'address', 'double', 'float']


def esc(t):
    return t.replace('\\', '\\\\').replace('*', '\\*').replace('_', '\\_')


def parse(text):
    """Yields ('plugin', name, description), ('group', name, description) and
    ('key', dotted path, type, description)."""
    stack = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.match(r'sources entry with type = "([\w-]+)": (.*)', line)
        if m:
            stack = []
            yield ('plugin', m[1], m[2])
            continue
        ind = (len(line) - len(line.lstrip(' '))) // 2
        key, rest = line.strip().split(None, 1)
        typ = next((t for t in TYPES if rest.startswith(t)), None)
        if typ is None:
            sys.exit('keys.py: unknown type in: ' + line)
        desc = rest[len(typ):].strip()
        if typ == 'group' and ind == 0:
            stack = [key]
            yield ('group', key, desc)
            continue
        stack[ind:] = [key]
        yield ('key', '.'.join(stack[:ind + 1]), typ, desc)


def entry(e):
    return '*%s* (%s)\n\t%s\n' % (esc(e[1]), e[2], esc(e[3]))


def cap(s):
    return s[:1].upper() + s[1:]


def main():
    text = sys.stdin.read()
    if len(sys.argv) == 3 and sys.argv[1] == '--check':
        page = open(sys.argv[2], encoding='utf-8').read().replace('\\', '')
        bad = 0
        for e in parse(text):
            if e[0] != 'key':
                continue
            want = entry(e).replace('\\', '')
            if want in page:
                continue
            bad += 1
            how = 'differs from -H (stale)' if '*%s*' % e[1] in page else 'is not described'
            print('%s: key %s %s; the entry should read:\n%s' % (sys.argv[2], e[1], how,
                                                               entry(e)))
        return 1 if bad else 0
    for e in parse(text):
        if e[0] == 'plugin':
            print('\n## Source type "%s"\n\n%s. Keys in a *sources* entry with *type = "%s"*:\n'
                  % (e[1], esc(cap(e[2])), e[1]))
        elif e[0] == 'group':
            print('\n## %s\n\n%s.\n' % (esc(e[1]), esc(cap(e[2]))))
        else:
            print(entry(e))
    return 0


if __name__ == '__main__':
    sys.exit(main())
