// The fault suite's independent check of the table: read with DuckDB (and parquet-wasm
// through verifyTable), never through our own code. For every producer: each record it
// produced is in the table exactly once, and in the order it was produced when the rows are
// ordered by the stream's `seq` column; per stream `seq` is unique and contiguous from 0 and
// there is one stream_id.
import { duckFrom, query, verifyTable } from './table.mjs';
import { padLen } from './faults_producers.mjs';

// Compact "12, 15..19, 40" from sorted integers.
export function ranges(nums, max = 12) {
  const out = [];
  for (let i = 0; i < nums.length && out.length < max;) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    out.push(i === j ? `${nums[i]}` : `${nums[i]}..${nums[j]}`);
    i = j + 1;
  }
  const shown = out.length;
  let rest = 0;
  for (let i = 0, k = 0; i < nums.length; i++) {
    if (i === 0 || nums[i] !== nums[i - 1] + 1) k++;
    if (k > shown) rest++;
  }
  return out.join(', ') + (rest ? ` (+${rest} more)` : '');
}

// " [produced at …, during fault …]" from the source's where(n), if it has one.
const where = (s, n) => {
  const w = s.where ? s.where(Number(n)) : '';
  return w ? ` [${s.letter} ${n}: ${w}]` : '';
};

// sources: [{ source, letter, produced, mayLose(n) → reason|null, mayFragment(k) → note|null,
//   where(n) → where record n was produced (for messages) }]
// Returns { problems: [...], notes: [...], perSource: {source: {...}}, rows }.
export async function checkTable(tableDir, sources) {
  const problems = [];
  const notes = [];
  const snap = await verifyTable(tableDir);
  const from = duckFrom(snap.files);
  const perSource = {};

  const stats = await query(`SELECT source, count(*) AS n, count(DISTINCT seq) AS dseq, min(seq) AS lo,
      max(seq) AS hi, count(DISTINCT stream_id) AS streams FROM ${from} GROUP BY source ORDER BY source`);
  const known = new Set(sources.map((s) => s.source));
  for (const r of stats) {
    if (!known.has(r.source)) problems.push(`rows of an unknown source ${r.source}: ${r.n}`);
  }
  for (const s of sources) {
    const r = stats.find((x) => x.source === s.source);
    const n = r ? Number(r.n) : 0;
    perSource[s.source] = { rows: n, produced: s.produced };
    if (!r) {
      if (s.produced) problems.push(`${s.source}: no rows at all (${s.produced} produced)`);
      continue;
    }
    // more than one stream_id: the agent split the source's backlog into segments
    // (backlog_split); seq continues across them, so the checks below still hold per source
    perSource[s.source].streamIds = Number(r.streams);
    if (Number(r.streams) > 1) notes.push(`${s.source}: ${r.streams} server streams (backlog_split segments)`);
    if (Number(r.dseq) !== n || Number(r.lo) !== 0 || Number(r.hi) !== n - 1) {
      problems.push(`${s.source}: stream seq not unique and contiguous: ${n} rows, ${r.dseq} distinct seq, min ${r.lo}, max ${r.hi}`);
    }
  }

  // Parse every row: p = producer number, valid = the whole line is a record of its producer.
  const parsed = `(SELECT source, seq, payload,
      TRY_CAST(regexp_extract(payload, '^[FSM] (\\d+) x+$', 1) AS BIGINT) AS p,
      left(payload, 1) AS letter, length(split_part(payload, ' ', 3)) AS padlen FROM ${from})`;
  const valid = `(SELECT * FROM ${parsed} WHERE p IS NOT NULL AND padlen = 20 + p % 37)`;

  for (const s of sources) {
    const src = s.source.replaceAll("'", "''");
    // rows that are not whole records of this producer (fragments, foreign lines)
    const bad = await query(`SELECT seq, payload FROM ${parsed} WHERE source = '${src}'
        AND NOT (p IS NOT NULL AND padlen = 20 + p % 37 AND letter = '${s.letter}') ORDER BY seq LIMIT 20`);
    const [{ nbad }] = await query(`SELECT count(*) AS nbad FROM ${parsed} WHERE source = '${src}'
        AND NOT (p IS NOT NULL AND padlen = 20 + p % 37 AND letter = '${s.letter}')`);
    perSource[s.source].fragments = Number(nbad);
    if (Number(nbad)) {
      const list = bad.map((b) => `seq ${b.seq}: ${JSON.stringify(String(b.payload).slice(0, 40))}`).join('; ');
      const allowed = s.mayFragment ? s.mayFragment(Number(nbad)) : null;
      if (allowed) notes.push(`${s.source}: ${nbad} partial line(s) ${allowed}: ${list}`);
      else problems.push(`${s.source}: ${nbad} rows that are not whole records: ${list}`);
    }
    const mine = `(SELECT * FROM ${valid} WHERE source = '${src}' AND letter = '${s.letter}')`;
    // duplicates
    const dups = await query(`SELECT p, count(*) AS c, list(seq ORDER BY seq) AS seqs FROM ${mine}
        GROUP BY p HAVING count(*) > 1 ORDER BY p LIMIT 20`);
    const [{ ndup }] = await query(`SELECT count(*) AS ndup FROM (SELECT p FROM ${mine}
        GROUP BY p HAVING count(*) > 1)`);
    perSource[s.source].duplicated = Number(ndup);
    if (Number(ndup)) {
      problems.push(`${s.source}: ${ndup} records duplicated, e.g. ${dups.map((d) =>
        `${s.letter} ${d.p} ×${d.c} (table seq ${[...d.seqs].join(',')})${where(s, d.p)}`).join('; ')}`);
    }
    // order: ordered by the stream's seq, the producer numbers must increase (first copies
    // only: a duplicate is reported above, not again as disorder)
    const firsts = `(SELECT * FROM ${mine} QUALIFY row_number() OVER (PARTITION BY p ORDER BY seq) = 1)`;
    const disorder = await query(`SELECT seq, p, prev FROM (SELECT seq, p, lag(p) OVER (ORDER BY seq) AS prev
        FROM ${firsts}) WHERE prev IS NOT NULL AND p <= prev ORDER BY seq LIMIT 10`);
    const [{ nord }] = await query(`SELECT count(*) AS nord FROM (SELECT p, lag(p) OVER (ORDER BY seq) AS prev
        FROM ${firsts}) WHERE prev IS NOT NULL AND p <= prev`);
    perSource[s.source].outOfOrder = Number(nord);
    if (Number(nord)) {
      problems.push(`${s.source}: ${nord} records out of order, e.g. ${disorder.map((d) =>
        `table seq ${d.seq} holds ${s.letter} ${d.p} after ${s.letter} ${d.prev}${where(s, d.p)}`).join('; ')}`);
    }
    // beyond what was produced
    const [{ nextra, lo }] = await query(`SELECT count(*) AS nextra, min(p) AS lo FROM ${mine}
        WHERE p >= ${s.produced}`);
    if (Number(nextra)) problems.push(`${s.source}: ${nextra} records numbered ≥ ${s.produced} (never produced), from ${lo}`);
    // missing
    const missing = (await query(`SELECT range AS p FROM range(0, ${s.produced})
        WHERE range NOT IN (SELECT p FROM ${mine}) ORDER BY 1`)).map((r) => Number(r.p));
    perSource[s.source].missing = missing.length;
    if (missing.length) {
      const unexplained = [];
      const explained = new Map();
      for (const n of missing) {
        const why = s.mayLose ? s.mayLose(n) : null;
        if (why) explained.set(why, (explained.get(why) || []).concat(n));
        else unexplained.push(n);
      }
      for (const [why, nums] of explained) notes.push(`${s.source}: ${nums.length} records not in the table, ${why}: ${ranges(nums, 6)}`);
      perSource[s.source].lostAllowed = missing.length - unexplained.length;
      if (unexplained.length) {
        problems.push(`${s.source}: ${unexplained.length} records missing: ${s.letter} ${ranges(unexplained)}${where(s, unexplained[0])}`);
      }
    }
  }
  return { problems, notes, perSource, rows: snap.rows };
}
