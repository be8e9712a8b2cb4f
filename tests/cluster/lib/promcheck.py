#!/usr/bin/env python3
"""promcheck.py — a strict checker of the Prometheus text exposition format
(version 0.0.4), for the cluster tests of GET /metrics.

Usage: promcheck.py FILE [NAME ...]
Exits 0 when FILE parses and every NAME is a metric family in it; else
prints the first problem and exits 1.  Checked:
  - every line is a HELP, a TYPE, another comment, or a sample that parses
    (metric name, optional {label="value",...} with \\ \" \\n escapes, a
    float value or +Inf/-Inf/NaN, an optional integer timestamp);
  - every family has a TYPE (counter, gauge, histogram, summary, untyped)
    given once, before its first sample; HELP at most once, before its
    samples; a family's samples are contiguous; no series appears twice;
  - counters are >= 0;
  - histograms: only NAME_bucket (with le), NAME_sum and NAME_count; per
    label set the buckets rise in le, are cumulative (never decrease), end
    with le="+Inf", and +Inf equals NAME_count.
"""
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
LNAME = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}


class Bad(Exception):
    pass


def parse_value(s):
    if s in ('+Inf', 'Inf'):
        return math.inf
    if s == '-Inf':
        return -math.inf
    if s == 'NaN':
        return math.nan
    if not re.fullmatch(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?', s):
        raise Bad('bad value %r' % s)
    return float(s)


def parse_labels(s, i):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == '}':
            return labels, i + 1
        m = LNAME.match(s, i)
        if not m:
            raise Bad('bad label name at %r' % s[i:])
        ln = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad('expected =" after label %s' % ln)
        i += 2
        v = []
        while True:
            if i >= len(s):
                raise Bad('unterminated label value')
            c = s[i]
            if c == '\\':
                n = s[i + 1:i + 2]
                if n not in ('\\', '"', 'n'):
                    raise Bad('bad escape \\%s' % n)
                v.append('\n' if n == 'n' else n)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                raise Bad('newline in label value')
            else:
                v.append(c)
                i += 1
        if ln in labels:
            raise Bad('label %s twice' % ln)
        labels[ln] = ''.join(v)
        if i < len(s) and s[i] == ',':
            i += 1
        elif i < len(s) and s[i] == '}':
            pass
        else:
            raise Bad('expected , or } after a label')


def family_of(name, types):
    if name in types:
        return name
    for suf in ('_bucket', '_sum', '_count'):
        if name.endswith(suf) and types.get(name[:-len(suf)]) in ('histogram', 'summary'):
            return name[:-len(suf)]
    return name


def check(text):
    if text and not text.endswith('\n'):
        raise Bad('no newline at the end')
    types, helps = {}, set()
    seen_series = set()
    done_families = set()
    current = None
    hist = {}  # (family, labels without le) -> list of (le, value); count
    counts = {}
    for no, line in enumerate(text.split('\n')[:-1], 1):
        try:
            if line.startswith('#'):
                parts = line.split(None, 3)
                if len(parts) >= 2 and parts[1] in ('HELP', 'TYPE'):
                    if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                        raise Bad('bad %s line' % parts[1])
                    fam = parts[2]
                    if fam in done_families or fam == current:
                        raise Bad('%s for %s after its samples' % (parts[1], fam))
                    if parts[1] == 'TYPE':
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise Bad('bad TYPE line')
                        if fam in types:
                            raise Bad('TYPE of %s twice' % fam)
                        types[fam] = parts[3]
                    else:
                        if fam in helps:
                            raise Bad('HELP of %s twice' % fam)
                        helps.add(fam)
                continue
            if not line.strip():
                raise Bad('empty line')
            m = NAME.match(line)
            if not m:
                raise Bad('bad metric name')
            name = m.group(0)
            i = m.end()
            labels = {}
            if i < len(line) and line[i] == '{':
                labels, i = parse_labels(line, i)
            rest = line[i:]
            if not rest.startswith(' '):
                raise Bad('expected a space before the value')
            fields = rest.split()
            if len(fields) not in (1, 2):
                raise Bad('expected a value and an optional timestamp')
            value = parse_value(fields[0])
            if len(fields) == 2 and not re.fullmatch(r'-?\d+', fields[1]):
                raise Bad('bad timestamp')
            fam = family_of(name, types)
            if fam not in types:
                raise Bad('sample of %s without a TYPE before it' % fam)
            if fam != current:
                if fam in done_families:
                    raise Bad('samples of %s are not together' % fam)
                if current is not None:
                    done_families.add(current)
                current = fam
            key = (name, tuple(sorted(labels.items())))
            if key in seen_series:
                raise Bad('series %s%s twice' % (name, labels))
            seen_series.add(key)
            t = types[fam]
            if t == 'counter' and not value >= 0:
                raise Bad('counter %s is %s' % (name, fields[0]))
            if t == 'histogram':
                rest_labels = tuple(sorted((k, v) for k, v in labels.items() if k != 'le'))
                if name == fam + '_bucket':
                    if 'le' not in labels:
                        raise Bad('bucket without le')
                    hist.setdefault((fam, rest_labels), []).append(
                        (parse_value(labels['le']), value))
                elif name == fam + '_count':
                    counts[(fam, rest_labels)] = value
                elif name == fam + '_sum':
                    pass
                else:
                    raise Bad('%s is not a sample of histogram %s' % (name, fam))
        except Bad as e:
            raise Bad('line %d: %s: %r' % (no, e, line))
    for (fam, ls), buckets in hist.items():
        les = [b[0] for b in buckets]
        if les != sorted(les) or len(set(les)) != len(les):
            raise Bad('%s%s: buckets not in rising le order' % (fam, dict(ls)))
        if les[-1] != math.inf:
            raise Bad('%s%s: no le="+Inf" bucket' % (fam, dict(ls)))
        vals = [b[1] for b in buckets]
        if any(b < a for a, b in zip(vals, vals[1:])):
            raise Bad('%s%s: buckets not cumulative: %s' % (fam, dict(ls), vals))
        if (fam, ls) not in counts:
            raise Bad('%s%s: no _count' % (fam, dict(ls)))
        if counts[(fam, ls)] != vals[-1]:
            raise Bad('%s%s: +Inf bucket %s != _count %s' % (fam, dict(ls), vals[-1],
                                                            counts[(fam, ls)]))
    for (fam, ls) in counts:
        if (fam, ls) not in hist:
            raise Bad('%s%s: _count without buckets' % (fam, dict(ls)))
    return types


def main():
    if len(sys.argv) < 2:
        print('usage: promcheck.py FILE [NAME ...]', file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding='utf-8') as f:
        text = f.read()
    try:
        types = check(text)
    except Bad as e:
        print('promcheck: %s: %s' % (sys.argv[1], e))
        return 1
    missing = [n for n in sys.argv[2:] if n not in types]
    if missing:
        print('promcheck: %s: missing metric families: %s' % (sys.argv[1], ' '.join(missing)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
