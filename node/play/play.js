/*
 * play.js — the playground page's logic (node/play/index.html).
 *
 * Every POLL_MS it asks the serving node for GET /v1/play/cluster (the status
 * of every member, as the serving node gets it from each member's client
 * port) and draws one card per node, the leader highlighted; the difference
 * from the previous answer (a node that went down or came back, a new term,
 * a new leader) goes to the event list.  GET /v1/watch streams the committed
 * changes as server-sent events; they go to the event list too.  The key
 * browser talks to /v1/kv.  The control buttons post to
 * /v1/play/nodes/ID/ACTION, which the node refuses (403) unless it was
 * started by `hstore up`.
 *
 * The token: `hstore up` prints the page's address with the token in the
 * fragment (#token=...), which never leaves the browser; the page moves it
 * to sessionStorage (this tab only) and removes it from the address bar.
 * Every request carries it as "Authorization: Bearer TOKEN".
 */
'use strict';

const POLL_MS = 700;
const MAX_EVENTS = 300;
const ACTIONS = [
  ['stop', 'stop', 'SIGTERM: the node shuts down cleanly'],
  ['kill', 'kill -9', 'SIGKILL: the node dies at once'],
  ['restart', 'restart', 'start the node again from its data'],
  ['partition', 'partition', 'drop all of the node\'s peer traffic'],
  ['heal', 'heal', 'let the node\'s peer traffic through again'],
];

let token = '';
let last = null;          /* the previous /v1/play/cluster answer, by node id */
let control = false;
let pollTimer = null;
let watchAbort = null;
let watchNext = 0;
let listTimer = null;        /* the next change index the watch expects */

const $ = (id) => document.getElementById(id);

function loadToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('hstore.token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  token = sessionStorage.getItem('hstore.token') || '';
}

function api(method, path, body) {
  const opts = { method, headers: {} };
  if (token)
    opts.headers['Authorization'] = 'Bearer ' + token;
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/octet-stream';
    opts.body = body;
  }
  return fetch(path, opts).then((r) => {
    if (r.status === 401)
      askToken('the node refused the token (401): enter the one `hstore up` printed');
    return r;
  });
}

async function errorText(r) {
  const text = await r.text();
  try {
    const j = JSON.parse(text);
    return (j.message || j.error || text) + ' (' + r.status + ')';
  } catch (e) {
    return (text || r.statusText) + ' (' + r.status + ')';
  }
}

function askToken(why) {
  $('tokenform').hidden = false;
  $('summary').textContent = why;
}

function now() {
  const d = new Date();
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function event(kind, text) {
  const li = document.createElement('li');
  li.className = kind;
  const t = document.createElement('span');
  t.className = 't';
  t.textContent = now();
  li.append(t, document.createTextNode(text));
  const list = $('events');
  list.prepend(li);
  while (list.children.length > MAX_EVENTS)
    list.lastChild.remove();
}

/* ---- the cluster view ---- */

function logLength(n) {
  return n.last_index >= n.first_index ? n.last_index - n.first_index + 1 : 0;
}

function cardState(n) {
  if (!n.ok)
    return 'down';
  return n.role;
}

function diff(prev, n) {
  const name = 'node ' + n.id;
  if (!prev) {
    if (!n.ok)
      event('down', name + ' does not answer');
    else if (n.role === 'leader')
      event('leader', name + ' leads (term ' + n.term + ')');
    return;
  }
  if (prev.ok && !n.ok)
    event('down', name + ' stopped answering' + (n.running === false ? ' (process gone)' : ''));
  if (!prev.ok && n.ok)
    event('control', name + ' is back (' + n.role + ', term ' + n.term + ')');
  if (!n.ok || !prev.ok)
    return;
  if (n.term > prev.term && n.role === 'candidate')
    event('election', name + ' starts an election for term ' + n.term);
  else if (n.term > prev.term && n.role !== 'leader')
    event('election', name + ' moves to term ' + n.term);
  if (n.role === 'leader' && prev.role !== 'leader')
    event('leader', name + ' becomes leader of term ' + n.term);
  if (prev.role === 'leader' && n.role !== 'leader')
    event('election', name + ' steps down (now ' + n.role + ', term ' + n.term + ')');
  if (n.partitioned !== prev.partitioned)
    event('control', name + (n.partitioned ? ' is partitioned' : ' is healed'));
  if (n.role === 'leader' && n.commit > prev.commit)
    event('change', name + ' commits ' + (n.commit - prev.commit) + ' entr' +
      (n.commit - prev.commit === 1 ? 'y' : 'ies') + ' (index ' + n.commit + ')');
}

function row(dl, k, v) {
  const dt = document.createElement('dt');
  dt.textContent = k;
  const dd = document.createElement('dd');
  dd.textContent = v;
  dl.append(dt, dd);
}

function drawNode(n) {
  const div = document.createElement('div');
  const state = cardState(n);
  div.className = 'node ' + state.replace('-', '') + (n.partitioned ? ' partitioned' : '');
  div.dataset.nodeId = n.id;
  div.dataset.role = state;
  const h = document.createElement('h3');
  const title = document.createElement('span');
  title.textContent = 'node ' + n.id;
  const role = document.createElement('span');
  role.className = 'role';
  role.textContent = state + (n.learner ? ' (learner)' : '');
  h.append(title, role);
  div.append(h);
  const dl = document.createElement('dl');
  row(dl, 'address', n.peer || '?');
  if (n.ok) {
    row(dl, 'term', n.term);
    row(dl, 'leader', n.leader ? 'node ' + n.leader : 'unknown');
    row(dl, 'commit / applied', n.commit + ' / ' + n.applied);
    row(dl, 'log', logLength(n) + ' entries (' + n.first_index + '..' + n.last_index + ')');
    row(dl, 'snapshot index', n.snapshot_index);
  } else {
    row(dl, 'status', n.error || 'no answer');
  }
  if (n.pid)
    row(dl, 'pid', n.pid + (n.running === false ? ' (gone)' : ''));
  div.append(dl);
  if (n.partitioned) {
    const f = document.createElement('div');
    f.className = 'flag';
    f.textContent = 'partitioned: peer traffic dropped';
    div.append(f);
  }
  if (control) {
    const ctl = document.createElement('div');
    ctl.className = 'ctl';
    for (const [action, label, help] of ACTIONS) {
      const b = document.createElement('button');
      b.textContent = label;
      b.title = help;
      b.dataset.action = action;
      if (action === 'kill' || action === 'stop')
        b.className = 'danger';
      const alive = n.running !== false && n.ok;
      if ((action === 'stop' || action === 'kill') && n.running === false)
        b.disabled = true;
      if (action === 'restart' && n.running !== false)
        b.disabled = true;
      if (action === 'partition' && (n.partitioned || !alive))
        b.disabled = true;
      if (action === 'heal' && !n.partitioned)
        b.disabled = true;
      b.addEventListener('click', () => controlNode(n.id, action, b));
      ctl.append(b);
    }
    div.append(ctl);
  }
  return div;
}

function draw(c) {
  control = !!c.control;
  $('control-note').textContent = control
    ? 'a local `hstore up` cluster: the buttons act on its processes'
    : 'controls off: ' + (c.control_reason || 'this node was not started by `hstore up`');
  const box = $('nodes');
  box.replaceChildren(...c.nodes.map(drawNode));
  const leaders = c.nodes.filter((n) => n.ok && n.role === 'leader');
  const up = c.nodes.filter((n) => n.ok).length;
  let s = up + ' of ' + c.nodes.length + ' nodes answer; ';
  s += leaders.length === 1 ? 'node ' + leaders[0].id + ' leads (term ' + leaders[0].term + ')'
    : leaders.length === 0 ? 'no leader' : leaders.length + ' nodes claim leadership';
  s += '; served by node ' + c.self;
  $('summary').textContent = s;
  $('summary').dataset.leaders = leaders.length;
}

async function poll() {
  try {
    const r = await api('GET', '/v1/play/cluster');
    if (r.ok) {
      const c = await r.json();
      const prev = last || {};
      for (const n of c.nodes)
        diff(last ? prev[n.id] : null, n);
      last = {};
      for (const n of c.nodes)
        last[n.id] = n;
      draw(c);
    } else if (r.status !== 401) {
      $('summary').textContent = 'status: ' + await errorText(r);
    }
  } catch (e) {
    $('summary').textContent = 'the serving node does not answer (' + e.message +
      '); open the page of another node';
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

async function controlNode(id, action, button) {
  button.disabled = true;
  event('control', 'asking for ' + action + ' of node ' + id);
  try {
    const r = await api('POST', '/v1/play/nodes/' + id + '/' + action);
    if (r.ok) {
      const j = await r.json();
      event('control', j.message || (action + ' of node ' + id + ' done'));
    } else {
      event('down', action + ' of node ' + id + ' refused: ' + await errorText(r));
    }
  } catch (e) {
    event('down', action + ' of node ' + id + ' failed: ' + e.message);
  }
}

/* ---- committed changes, from the server-sent events of /v1/watch ---- */

function sseEvent(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:'))
      name = line.slice(6).trim();
    else if (line.startsWith('data:'))
      data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0)
    return;
  let text = data.join('\n');
  try {
    const j = JSON.parse(text);
    if (j.op !== undefined) {
      const key = j.key === null || j.key === undefined ? 'inode ' + j.ino : j.key;
      text = 'index ' + j.index + ': ' + j.op + ' ' + key + (j.key2 ? ' -> ' + j.key2 : '');
      watchNext = Math.max(watchNext, j.index + 1);
    } else if (j.next !== undefined) {
      text = 'changes ' + j.from + '..' + (j.next - 1) + ' were not kept for this page';
      watchNext = j.next;
    }
  } catch (e) { /* plain text */ }
  event('change', (name === 'change' ? 'committed ' : name + ': ') + text);
  if (!listTimer) /* the key list follows the changes, at most every second */
    listTimer = setTimeout(() => { listTimer = null; listKeys(); }, 1000);
}

async function watch() {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    watchAbort = new AbortController();
    try {
      const r = await fetch('/v1/watch' + (watchNext ? '?from=' + watchNext : ''), {
        headers: token ? { Authorization: 'Bearer ' + token } : {},
        signal: watchAbort.signal,
      });
      if (r.ok && r.body) {
        delay = 500;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done)
            break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            sseEvent(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      }
    } catch (e) { /* reconnect below */ }
    await new Promise((res) => setTimeout(res, delay));
  }
}

/* ---- the key browser ---- */

function result(text, err) {
  const el = $('kv-result');
  el.textContent = text;
  el.className = 'result' + (err ? ' err' : '');
}

function keyPath(k) {
  return '/v1/kv/' + k.split('/').map(encodeURIComponent).join('/');
}

async function kv(action) {
  const key = $('kv-key').value;
  if (!key) {
    result('a key first', true);
    return;
  }
  const value = $('kv-value').value;
  const method = { get: 'GET', put: 'PUT', append: 'POST', delete: 'DELETE' }[action];
  try {
    const r = await api(method, keyPath(key),
      action === 'put' || action === 'append' ? new TextEncoder().encode(value) : undefined);
    if (!r.ok) {
      result(action + ' ' + key + ': ' + await errorText(r), true);
      return;
    }
    if (action === 'get') {
      const v = await r.text();
      $('kv-value').value = v;
      result('get ' + key + ': ' + v.length + ' bytes');
    } else {
      result(action + ' ' + key + ': done');
      listKeys();
    }
  } catch (e) {
    result(action + ' ' + key + ': ' + e.message, true);
  }
}

async function listKeys() {
  const prefix = $('kv-prefix').value;
  try {
    const r = await api('GET', '/v1/kv/?prefix=' + encodeURIComponent(prefix));
    if (!r.ok) {
      result('list: ' + await errorText(r), true);
      return;
    }
    const j = await r.json();
    const items = Array.isArray(j) ? j : (j.keys || j.items || []);
    const ul = $('keys');
    ul.replaceChildren(...items.map((it) => {
      const k = typeof it === 'string' ? it : it.key;
      const li = document.createElement('li');
      li.textContent = k + (typeof it === 'object' && it.size !== undefined ? '  (' + it.size + ' B)' : '');
      li.addEventListener('click', () => { $('kv-key').value = k; kv('get'); });
      return li;
    }));
    if (items.length === 0)
      ul.replaceChildren(Object.assign(document.createElement('li'), { textContent: '(no keys)' }));
  } catch (e) {
    result('list: ' + e.message, true);
  }
}

function init() {
  loadToken();
  $('tokenform').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem('hstore.token', token);
    $('tokenform').hidden = true;
    if (watchAbort)
      watchAbort.abort();
    listKeys();
  });
  for (const a of ['get', 'put', 'append', 'delete'])
    $('kv-' + a).addEventListener('click', () => kv(a));
  $('kv-list').addEventListener('click', listKeys);
  $('clear-events').addEventListener('click', () => $('events').replaceChildren());
  poll();
  watch();
  listKeys();
}

init();
