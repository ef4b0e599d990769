// Moat's web UI: the status line, the service map, the details of what is clicked and the
// flows table, all from moatd's read-only API (moatd(8), "WEB UI"), live over server-sent
// events. Text from moatd (names, labels) is hostile: it only ever goes into textContent.
import { ServiceMap, nodeText, splitId } from './map.js';

const $ = (id) => document.getElementById(id);
const ROWS_MAX = 500;
const GRAPH_REFRESH_MS = 1500;	// after news, the graph's counts are fetched again
const GRAPH_POLL_MS = 10000;

class AuthError extends Error {}

// Elements with text only: h('td', {class: 'x'}, 'text', child...).
function h(tag, attrs, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
	for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
	return e;
}

async function api(path) {
	const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
	if (r.status === 401) throw new AuthError('token required');
	const j = await r.json();
	if (!j.ok) throw new Error(j.error || `HTTP ${r.status}`);
	return j;
}

const pad = (n) => String(n).padStart(2, '0');
// by hand: toLocaleTimeString builds a formatter per call, a row costs milliseconds
const time = (ms) => {
	if (!ms) return '';
	const d = new Date(ms);
	return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};
const dateTime = (ms) => {
	if (!ms) return '';
	const d = new Date(ms);
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(ms)}`;
};
const portOf = (f) => ['tcp', 'udp', 'sctp'].includes(f.proto) ? `${f.port}/${f.proto}` : f.proto;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---- status ----

function statusText(s) {
	const parts = [];
	const apply = s.last_apply || {};
	parts.push(h('span', { class: `mode ${s.mode}` }, s.mode));
	parts.push(plural(s.policies, 'policy').replace('policys', 'policies'));
	parts.push(plural(s.endpoints, 'endpoint'));
	parts.push(`last apply ${apply.ms ?? '?'} ms (${apply.full ? 'full' : 'incremental'}, ${plural(s.applies, 'apply').replace('applys', 'applies')}${s.apply_errors ? `, ${s.apply_errors} failed` : ''})`);
	if (s.alerts) parts.push(h('span', { class: s.alerts.raised ? 'alerts' : '' }, plural(s.alerts.raised, 'alert')));
	if (s.learning) parts.push(`learning: ${s.learning.state}`);
	if (s.flows) parts.push(plural(s.flows.count, 'flow'));
	if (s.capture?.error) parts.push(h('span', { class: 'error' }, `no capture: ${s.capture.error}`));
	if (!s.runtime_up && s.runtime !== 'none') parts.push(h('span', { class: 'error' }, 'runtime down'));
	const out = [];
	parts.forEach((p, i) => { if (i) out.push(' \u00b7 '); out.push(p); });
	return out;
}

let lastStatus = null;
function showStatus(s) {
	$('status').replaceChildren(...statusText(s));
	const changed = !lastStatus || ['applies', 'policies', 'endpoints', 'mode'].some((k) => lastStatus[k] !== s[k]);
	lastStatus = s;
	if (changed) refreshGraph(0);
}

// ---- the map ----

const endpoints = new Map();	// "ns/name" -> endpoint from /api/endpoints
let map;

function decorate(graph) {
	for (const n of graph.nodes) {
		const eps = (n.endpoints || []).map((name) => endpoints.get(name)).filter(Boolean);
		n.isolated = eps.some((e) => e.isolated.ingress || e.isolated.egress);
		n.monitor = eps.some((e) => e.mode === 'monitor');
	}
	return graph;
}

let refreshTimer = null, refreshing = false;
function refreshGraph(delay) {
	clearTimeout(refreshTimer);
	refreshTimer = setTimeout(loadGraph, delay);
}

async function loadGraph() {
	if (refreshing) return refreshGraph(300);
	refreshing = true;
	try {
		performance.mark('graph-asked');
		const asked = Date.now();
		const [g, eps] = await Promise.all([api('/api/graph'), api('/api/endpoints')]);
		performance.mark('graph-fetched');
		endpoints.clear();
		for (const e of eps.endpoints) endpoints.set(e.name, e);
		map.setGraph(decorate(g.graph), asked);
		performance.mark('graph-drawn');
		const notes = [];
		if (g.graph.truncated) notes.push('only the newest flows are drawn');
		if (g.graph.policy_truncated && map.showPolicy) notes.push('not every path policies allow is listed');
		if (!g.graph.policy_edges) notes.push('too many groups to draw what policies allow');
		$('graph-note').textContent = notes.join('; ');
		document.body.dataset.graphLoaded = String(Date.now());
	} catch (e) {
		if (e instanceof AuthError) return needLogin();
		$('graph-note').textContent = `graph: ${e.message}`;
	} finally {
		refreshing = false;
		clearTimeout(pollTimer);
		pollTimer = setTimeout(() => refreshGraph(0), GRAPH_POLL_MS);
	}
}
let pollTimer = null;

// ---- details ----

function labelList(labels) {
	return h('span', { class: 'labels' }, ...Object.entries(labels || {}).map(([k, v]) => h('code', {}, `${k}=${v}`)));
}

function showNode(n) {
	const [ns] = splitId(n.id);
	const box = $('details');
	box.replaceChildren(h('h3', {}, nodeText(n.id)[1]), h('p', { class: 'sub' }, n.kind === 'external' ? 'an address outside the node\'s endpoints' : `${n.id}: a group of namespace ${ns} (replicas by their stable labels)`));
	const rows = (n.endpoints || []).map((en) => {
		const e = endpoints.get(en);
		if (!e) return h('tr', {}, h('td', {}, en), h('td', { colspan: 4 }, 'gone'));
		const iso = ['ingress', 'egress'].filter((d) => e.isolated[d]).join(', ') || 'none';
		return h('tr', { 'data-endpoint': e.name }, h('td', {}, e.name), h('td', {}, (e.ips || []).join(' ')),
			h('td', {}, labelList(e.labels)), h('td', {}, iso), h('td', { class: `mode ${e.mode}` }, e.mode));
	});
	if (rows.length)
		box.append(h('table', { class: 'endpoints' }, h('thead', {}, h('tr', {}, ...['endpoint', 'addresses', 'labels', 'isolated', 'mode'].map((t) => h('th', {}, t)))), h('tbody', {}, ...rows)));
	const touching = [...map.edges.values()].filter((e) => e.from === n.id || e.to === n.id);
	if (touching.length)
		box.append(h('p', { class: 'sub' }, `${plural(touching.length, 'edge')}: `, ...touching.map((e) => h('span', { class: `pill ${e.kind}` }, `${e.from === n.id ? '\u2192 ' + nodeText(e.to)[1] : '\u2190 ' + nodeText(e.from)[1]} ${[...e.ports.keys()].join(', ')}`))));
}

function sideText(s, dir, who) {
	if (!s.isolated) return `${dir} of ${who}: not isolated: allowed`;
	let t = `${dir} of ${who}: isolated (${s.mode}) by ${(s.policies || []).join(', ')}`;
	if (!s.rule) return `${t}; no rule allows it`;
	const r = s.rule;
	return `${t}; allowed by ${r.policy} ${dir} rule ${r.index} at ${r.file}:${r.line}:${r.col}`;
}

async function explainInto(li, sample, port) {
	try {
		const q = new URLSearchParams({ from: sample.from, to: sample.to, port });
		const x = (await api(`/api/explain?${q}`)).explain;
		li.replaceChildren(h('strong', { class: `verdict ${x.verdict}` }, `${x.from} \u2192 ${x.to} ${x.port}: ${x.verdict}`),
			...(x.loopback ? [h('div', {}, 'loopback: an endpoint reaching itself never leaves its network namespace')] : []),
			h('div', { class: 'side egress' }, sideText(x.egress, 'egress', x.from)),
			h('div', { class: 'side ingress' }, sideText(x.ingress, 'ingress', x.to)));
	} catch (e) {
		li.replaceChildren(h('span', { class: 'error' }, `explain: ${e.message}`));
	}
}

function showEdge(e) {
	const box = $('details');
	const ports = [...e.ports.entries()].sort(([a], [b]) => a.localeCompare(b));
	box.replaceChildren(h('h3', {}, `${nodeText(e.from)[1]} \u2192 ${nodeText(e.to)[1]}`),
		h('p', { class: 'sub' }, `${e.from} \u2192 ${e.to}: `, h('span', { class: `pill ${e.kind}` }, e.kind === 'policy' ? 'allowed, never seen' : e.kind)));
	for (const [p, x] of ports) {
		const seen = x.count ? [`${plural(x.count, 'time')}, first ${dateTime(x.first_ms)}, last ${dateTime(x.last_ms)}`] : ['never seen'];
		box.append(h('div', { class: 'port', 'data-port': p }, h('strong', {}, p), ' ', ...seen,
			x.policy ? h('div', { class: 'sub' }, `deciding policy: ${x.policy}`) : null));
	}
	const list = h('ul', { id: 'explain', class: 'explain' });
	box.append(h('h4', {}, 'Why (moat policy explain, on the plan in force)'), list);
	for (const [p, x] of ports.slice(0, 8)) {
		if (!x.sample?.from || !x.sample?.to) continue;
		const li = h('li', {}, 'explaining\u2026');
		list.append(li);
		explainInto(li, x.sample, p);
	}
}

function onSelect(what) {
	if (!what) $('details').replaceChildren(h('p', { class: 'hint' }, 'Click a service or an arrow.'));
	else if (what.type === 'node') showNode(what.node);
	else showEdge(what.edge);
}

// ---- event streams ----

// The map's stream: every flow, and the status.
function graphStream() {
	const es = new EventSource('/api/events?limit=1&status=1');
	es.addEventListener('open', () => { $('live').className = 'live on'; });
	es.addEventListener('error', () => { $('live').className = 'live off'; });
	es.addEventListener('status', (m) => showStatus(JSON.parse(m.data)));
	es.addEventListener('flow', (m) => {
		const f = JSON.parse(m.data);
		map.addFlow(f);
		document.body.dataset.lastFlow = String(Date.now());
		refreshGraph(GRAPH_REFRESH_MS);
	});
}

// The table's stream: `moat flows --follow` with the form's filters.
const rows = new Map();
let tableES = null;

function filters() {
	const q = new URLSearchParams({ limit: '200' });
	for (const k of ['from', 'to', 'port', 'verdict', 'since']) {
		const v = $(`f-${k}`).value.trim();
		if (v) q.set(k, v);
	}
	return q;
}

const rowKey = (f) => `${f.from.name || f.from.ip}\0${f.to.name || f.to.ip}\0${f.proto}\0${f.port}`;
const peer = (p) => p.name || p.ip;

function flowRow(f) {
	return h('tr', { class: f.verdict, 'data-verdict': f.verdict, 'data-from': peer(f.from), 'data-to': peer(f.to) },
		h('td', { title: f.last }, time(f.last_ms)), h('td', { title: f.from.group || f.from.ip }, peer(f.from)),
		h('td', { title: f.to.group || f.to.ip }, peer(f.to)), h('td', {}, portOf(f)),
		h('td', { class: 'verdict' }, f.verdict), h('td', {}, f.policy || ''), h('td', { class: 'num' }, f.count));
}

let tableNote = '';
function countRows() {
	$('f-count').textContent = `${plural(rows.size, 'flow')} shown ${tableNote}`;
}

function tableUpsert(f, top) {
	const k = rowKey(f), old = rows.get(k), tr = flowRow(f);
	if (old) old.remove();
	rows.set(k, tr);
	const body = $('flows');
	if (top) body.prepend(tr); else body.append(tr);
	while (rows.size > ROWS_MAX) {
		const last = body.lastElementChild;
		for (const [rk, r] of rows) if (r === last) rows.delete(rk);
		last.remove();
	}
}

async function tableStream() {
	if (tableES) tableES.close();
	const q = filters();
	$('f-error').textContent = '';
	let opened = false;
	const es = tableES = new EventSource(`/api/events?${q}`);
	es.addEventListener('flows', (m) => {
		opened = true;
		const r = JSON.parse(m.data);
		rows.clear();
		$('flows').replaceChildren();
		for (const f of r.flows.slice().reverse()) tableUpsert(f, false);
		tableNote = `of ${r.table.count} in moatd's table${r.table.evicted ? `, ${r.table.evicted} evicted` : ''}`;
		countRows();
		document.body.dataset.tableQuery = q.toString();
	});
	es.addEventListener('flow', (m) => { tableUpsert(JSON.parse(m.data), true); countRows(); });
	es.addEventListener('error', async () => {
		if (opened || es !== tableES) return;
		es.close();	// refused: the same query as a plain request says why
		try { await api(`/api/flows?${q}`); } catch (e) { $('f-error').textContent = e.message; }
	});
}

// ---- login ----

function needLogin() {
	$('login').hidden = false;
	$('status').textContent = 'token required';
	$('token').focus();
}

async function login(ev) {
	ev.preventDefault();
	const r = await fetch('/api/login', { method: 'POST', credentials: 'same-origin', headers: { Authorization: `Bearer ${$('token').value}` } });
	if (r.status !== 200) {
		$('login-error').textContent = 'That is not the token.';
		return;
	}
	$('login').hidden = true;
	$('token').value = '';
	start();
}

// ---- start ----

let started = false;
async function start() {
	try {
		showStatus((await api('/api/status')));
	} catch (e) {
		if (e instanceof AuthError) return needLogin();
		$('status').textContent = `moatd: ${e.message}`;
		return;
	}
	if (started) return;
	started = true;
	graphStream();
	tableStream();
}

function init() {
	map = new ServiceMap($('map'), onSelect, `moat.layout.${location.host}`);
	$('show-policy').addEventListener('change', (e) => map.setPolicyEdges(e.target.checked));
	$('fit').addEventListener('click', () => map.resetView());
	$('relayout').addEventListener('click', () => map.relayout());
	let t = null;
	$('filters').addEventListener('input', () => { clearTimeout(t); t = setTimeout(tableStream, 300); });
	$('filters').addEventListener('submit', (e) => { e.preventDefault(); tableStream(); });
	$('login-form').addEventListener('submit', login);
	start();
}

init();
