// play_browser.js — drives the playground page in a real headless browser
// (Debian's chromium through playwright-core, installed by `make playwright`),
// for tests/cluster/test_play_browser.sh.
//
//   node play_browser.js file OUTDIR PAGE.html
//       opens a local copy of the page (no server): the browser works
//   node play_browser.js shot FILE.png URL WAIT_MS
//       opens a page, writes FILE.png.ready once it shows the nodes, waits
//       WAIT_MS and keeps one screenshot (the README's)
//   node play_browser.js cluster OUTDIR KEY VALUE ID=URL [ID=URL ...]
//       opens the page of a node (URL with #token=...), checks that it shows
//       every node and exactly one leader, kills the leader with its button
//       (from another node's page when the leader serves the page), waits
//       for a new leader, and puts KEY=VALUE through the key browser
//
// Screenshots go to OUTDIR (NN-what.png).  The last line on stdout is a JSON
// summary; exit 0 on success, 1 on a failed check, 77 when chromium cannot
// start (the only reason the test may be skipped).
'use strict';

const path = require('path');
const fs = require('fs');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = Number(process.env.PLAY_DEADLINE_MS || 30000);
const modDir = process.env.PLAYWRIGHT_DIR ||
  path.join(__dirname, '..', '..', 'build', 'playwright', 'node_modules');

let shot = 0;
async function screenshot(page, outdir, what) {
  shot++;
  const file = path.join(outdir, String(shot).padStart(2, '0') + '-' + what + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log('screenshot: ' + file);
}

function fail(msg) {
  const e = new Error(msg);
  e.check = true;
  throw e;
}

/* Polls fn() (in the page) until it returns a truthy value; fails at the deadline. */
async function until(page, what, fn, arg, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg).catch((e) => ({ error: String(e) }));
    if (last && !last.error && last.ok)
      return last;
    if (Date.now() > end)
      fail('no ' + what + ' within ' + ms / 1000 + ' s; the page shows: ' + JSON.stringify(last));
    await page.waitForTimeout(200);
  }
}

async function launch() {
  let chromium;
  try {
    ({ chromium } = require(path.join(modDir, 'playwright-core')));
  } catch (e) {
    console.error('play_browser: playwright-core is not installed in ' + modDir +
      ' (make playwright): ' + e.message);
    process.exit(1);
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 60000,
    });
  } catch (e) {
    console.error('play_browser: SKIP: chromium (' + CHROMIUM + ') cannot start: ' + e.message);
    process.exit(77);
  }
}

async function fileMode(browser, outdir, html) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto('file://' + path.resolve(html));
  const title = await page.title();
  if (!/hstore/.test(title))
    fail('the page title is "' + title + '"');
  await screenshot(page, outdir, 'local-file');
  return { title };
}

async function clusterMode(browser, outdir, key, value, urls) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log('page error: ' + e.message));
  const ids = Object.keys(urls).map(Number).sort();
  let serving = ids[0];
  await page.goto(urls[serving]);

  /* every node and exactly one leader */
  const want = ids.length;
  let seen = await until(page, want + ' nodes and one leader',
    (n) => {
      const c = (function () {
        const nodes = [...document.querySelectorAll('#nodes .node')].map((d) => ({
          id: Number(d.dataset.nodeId), role: d.dataset.role,
        }));
        return { nodes, leaders: nodes.filter((x) => x.role === 'leader') };
      })();
      c.ok = c.nodes.length === n && c.leaders.length === 1 &&
        c.nodes.every((x) => x.role !== 'down');
      return c;
    }, want);
  const oldLeader = seen.leaders[0].id;
  console.log('play_browser: page of node ' + serving + ' shows ' + seen.nodes.length +
    ' nodes, node ' + oldLeader + ' leads');
  await screenshot(page, outdir, 'three-nodes-one-leader');

  /* the leader's page would die with it: use another node's */
  if (oldLeader === serving) {
    serving = ids.find((i) => i !== oldLeader);
    await page.goto(urls[serving]);
    await until(page, 'the page of node ' + serving,
      (n) => ({ ok: document.querySelectorAll('#nodes .node').length === n }), want);
  }
  const kill = page.locator('#nodes .node[data-node-id="' + oldLeader + '"] button[data-action="kill"]');
  await kill.click({ timeout: DEADLINE_MS });
  console.log('play_browser: clicked kill -9 of node ' + oldLeader + ' on the page of node ' + serving);

  seen = await until(page, 'a new leader after killing node ' + oldLeader,
    (old) => {
      const nodes = [...document.querySelectorAll('#nodes .node')].map((d) => ({
        id: Number(d.dataset.nodeId), role: d.dataset.role,
      }));
      const leaders = nodes.filter((x) => x.role === 'leader');
      const dead = nodes.find((x) => x.id === old);
      return { nodes, leaders, ok: leaders.length === 1 && leaders[0].id !== old &&
        dead && dead.role === 'down' };
    }, oldLeader);
  const newLeader = seen.leaders[0].id;
  console.log('play_browser: node ' + newLeader + ' leads now; node ' + oldLeader + ' shows down');
  await screenshot(page, outdir, 'new-leader');

  /* a key through the key browser */
  await page.fill('#kv-key', key);
  await page.fill('#kv-value', value);
  await page.click('#kv-put');
  await until(page, 'the put of ' + key + ' to be done',
    (k) => {
      const r = document.getElementById('kv-result');
      return { ok: r.textContent === 'put ' + k + ': done', text: r.textContent, cls: r.className };
    }, key);
  await page.fill('#kv-value', '');
  await page.click('#kv-get');
  await until(page, 'the get of ' + key,
    (v) => ({ ok: document.getElementById('kv-value').value === v,
      text: document.getElementById('kv-result').textContent }), value);
  console.log('play_browser: put and got ' + key + ' through the page');
  await screenshot(page, outdir, 'key-put');

  /* the restart button brings the killed node back */
  const restart = page.locator('#nodes .node[data-node-id="' + oldLeader + '"] button[data-action="restart"]');
  await restart.click({ timeout: DEADLINE_MS });
  await until(page, 'node ' + oldLeader + ' back after its restart',
    (old) => {
      const d = document.querySelector('#nodes .node[data-node-id="' + old + '"]');
      return { ok: d && d.dataset.role !== 'down', role: d && d.dataset.role };
    }, oldLeader);
  console.log('play_browser: node ' + oldLeader + ' restarted from the page');
  await screenshot(page, outdir, 'restarted');
  return { old_leader: oldLeader, new_leader: newLeader, serving, key, value };
}

(async () => {
  const [mode, outdir, ...rest] = process.argv.slice(2);
  if (mode === 'shot') {
    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    await page.goto(rest[0]);
    await until(page, 'the nodes', () => ({ ok: document.querySelectorAll('#nodes .node').length > 0 }));
    fs.writeFileSync(outdir + '.ready', '');
    await page.waitForTimeout(Number(rest[1] || 3000));
    await page.screenshot({ path: outdir });
    await browser.close();
    return;
  }
  if (!mode || !outdir || (mode !== 'file' && mode !== 'cluster')) {
    console.error('usage: play_browser.js file OUTDIR PAGE.html | shot FILE URL WAIT_MS | cluster OUTDIR KEY VALUE ID=URL...');
    process.exit(2);
  }
  fs.mkdirSync(outdir, { recursive: true });
  const browser = await launch();
  let rc = 0;
  try {
    let out;
    if (mode === 'file') {
      out = await fileMode(browser, outdir, rest[0]);
    } else {
      const urls = {};
      for (const a of rest.slice(2)) {
        const i = a.indexOf('=');
        urls[Number(a.slice(0, i))] = a.slice(i + 1);
      }
      out = await clusterMode(browser, outdir, rest[0], rest[1], urls);
    }
    console.log(JSON.stringify(out));
  } catch (e) {
    console.error('play_browser: FAIL: ' + (e.check ? e.message : e.stack));
    rc = 1;
  } finally {
    await browser.close().catch(() => {});
  }
  process.exit(rc);
})();
