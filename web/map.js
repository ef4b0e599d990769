// The service map: nodes and edges of /api/graph drawn as SVG, kept in place between updates
// (layout.js), with zoom, pan and selection. Knows nothing of HTTP.
import { GAP, NODE_W, NODE_H, place, relayout } from './layout.js';

const SVG = 'http://www.w3.org/2000/svg';
const KINDS = ['policy', 'allowed', 'violation', 'denied'];	// drawing order: denied on top
const LABELS_MAX = 80;		// more edges than this: labels only on hover and selection

function el(name, attrs, parent) {
	const e = document.createElementNS(SVG, name);
	for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
	if (parent) parent.appendChild(e);
	return e;
}

// "shop/app=db,tier=data" -> ["shop", "app=db,tier=data"]; an address stays whole.
export function splitId(id) {
	const i = id.indexOf('/');
	return i < 0 || id.includes(':') && !id.includes('=') ? ['', id] : [id.slice(0, i), id.slice(i + 1)];
}

// What a node's box says: the first label's value large ("db"), the namespace and the other
// labels small ("shop \u00b7 tier=data"); the full name is in its tooltip and the details.
export function nodeText(id) {
	const [ns, rest] = splitId(id);
	const labels = rest.split(',');
	const eq = labels[0].indexOf('=');
	if (!ns || eq < 0) return [ns, rest];
	return [[ns, ...labels.slice(1)].join(' \u00b7 '), labels[0].slice(eq + 1)];
}

function short(s, n) {
	return s.length > n ? s.slice(0, n - 1) + '\u2026' : s;
}

// A cubic curve from a to b leaving and entering at the sides that face each other; bend
// shifts it so parallel edges of different kinds do not cover each other, and an edge that
// jumps over columns arches away from the middle of the map (mid: its height), around the
// nodes between.
function curve(a, b, bend, mid) {
	const w = NODE_W / 2, pitch = NODE_W + GAP;
	let x1, x2, c1, c2, arch = 0;
	if (Math.abs(b.x - a.x) > NODE_W) {
		const dir = b.x > a.x ? 1 : -1;
		x1 = a.x + dir * w; x2 = b.x - dir * w;
		const d = Math.max(40, Math.abs(x2 - x1) / 2);
		c1 = x1 + dir * d; c2 = x2 - dir * d;
		const span = Math.abs(b.x - a.x) / pitch;
		if (span > 1.5) arch = ((a.y + b.y) / 2 < mid ? -1 : 1) * Math.min(150, 36 * span);
	} else {	// one above the other: an arc out to the right
		x1 = a.x + w; x2 = b.x + w;
		c1 = c2 = Math.max(x1, x2) + 40 + Math.abs(b.y - a.y) / 4;
	}
	const y1 = a.y + bend, y2 = b.y + bend, cy1 = y1 + bend + arch, cy2 = y2 + bend + arch;
	const d = `M${x1},${y1} C${c1},${cy1} ${c2},${cy2} ${x2},${y2}`;
	// the point at t = 1/2, for the label
	const mx = (x1 + 3 * c1 + 3 * c2 + x2) / 8, my = (y1 + 3 * cy1 + 3 * cy2 + y2) / 8;
	return { d, mx, my };
}

export class ServiceMap {
	// svg: the <svg> element; onSelect({type: 'node'|'edge', ...}) on a click.
	constructor(svg, onSelect, storageKey) {
		this.svg = svg;
		this.onSelect = onSelect;
		this.storageKey = storageKey;
		this.nodes = new Map();		// id -> node from /api/graph (+ decorations)
		this.edges = new Map();		// "from\0to\0kind" -> {from, to, kind, ports: Map}
		this.pos = this.loadPositions();
		this.drawnEdges = this.pos.size ? Infinity : 0;	// saved positions are kept
		this.showPolicy = false;
		this.selected = null;
		this.fresh = new Map();		// edge key -> time it last got news
		this.view = null;		// the viewBox, once the user zoomed or panned
		this.root = el('g', { class: 'viewport' }, svg);
		this.gEdges = el('g', { class: 'edges' }, this.root);
		this.gLabels = el('g', { class: 'labels' }, this.root);
		this.gNodes = el('g', { class: 'nodes' }, this.root);
		this.markers();
		this.interact();
		// the box's size, kept up to date without forcing a layout on every draw
		this.size = { width: 0, height: 0 };
		new ResizeObserver(([e]) => {
			this.size = { width: e.contentRect.width, height: e.contentRect.height };
			this.fit();
		}).observe(svg);
	}

	markers() {
		const defs = el('defs', {}, this.svg);
		for (const k of KINDS) {
			const m = el('marker', { id: `arrow-${k}`, viewBox: '0 0 10 10', refX: 9, refY: 5,
				markerUnits: 'userSpaceOnUse', markerWidth: k === 'denied' ? 12 : 9,
				markerHeight: k === 'denied' ? 12 : 9, orient: 'auto-start-reverse', class: `arrow ${k}` }, defs);
			el('path', { d: 'M0,0 L10,5 L0,10 z' }, m);
		}
	}

	loadPositions() {
		try {
			const saved = JSON.parse(localStorage.getItem(this.storageKey) || '{}');
			return new Map(Object.entries(saved).filter(([, p]) => Number.isFinite(p.x) && Number.isFinite(p.y)));
		} catch (e) {
			return new Map();
		}
	}

	savePositions() {
		try {
			localStorage.setItem(this.storageKey, JSON.stringify(Object.fromEntries(this.pos)));
		} catch (e) { /* private mode: positions last as long as the page */ }
	}

	// The graph from /api/graph replaces what is drawn; positions are kept. asked: when it
	// was asked for (Date.now()): what a live flow brought after that stays until a graph
	// has it; older live news the graph lacks is gone from moatd (evicted, or a restart).
	setGraph(graph, asked) {
		const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
		const edges = new Map();
		for (const e of graph.edges) this.addEdge(edges, e);
		for (const [id, n] of this.nodes)
			if (!nodes.has(id) && n.live >= asked) nodes.set(id, n);
		for (const [k, e] of this.edges)
			if (!edges.has(k) && e.live >= asked && nodes.has(e.from) && nodes.has(e.to)) edges.set(k, e);
		this.nodes = nodes;
		this.edges = edges;
		this.update();
	}

	addEdge(edges, e) {
		const k = `${e.from}\0${e.to}\0${e.kind}`;
		let m = edges.get(k);
		if (!m) edges.set(k, m = { key: k, from: e.from, to: e.to, kind: e.kind, ports: new Map() });
		m.ports.set(e.port, e);
		return m;
	}

	// A flow from the event stream: drawn at once (its edge and nodes, if new).
	addFlow(f) {
		const id = (p) => p.group || p.name || p.ip;
		const from = id(f.from), to = id(f.to);
		const port = ['tcp', 'udp', 'sctp'].includes(f.proto) ? `${f.port}/${f.proto}` : f.proto;
		const sample = { from: f.from.name || f.from.ip, to: f.to.name || f.to.ip };
		for (const [nid, p] of [[from, f.from], [to, f.to]])
			if (!this.nodes.has(nid))
				this.nodes.set(nid, { id: nid, kind: p.name ? 'group' : 'external', endpoints: p.name ? [p.name] : [], live: Date.now() });
		const k = `${from}\0${to}\0${f.verdict}`;
		const old = this.edges.get(k)?.ports.get(port);
		const e = this.addEdge(this.edges, {
			from, to, port, kind: f.verdict, sample, policy: f.policy,
			count: Math.max(old?.count || 0, f.count), first_ms: old?.first_ms ?? f.first_ms, last_ms: f.last_ms,
		});
		e.live = Date.now();
		this.fresh.set(k, Date.now());
		this.update();
		return e;
	}

	setPolicyEdges(on) {
		this.showPolicy = on;
		this.update();
	}

	relayout() {
		this.pos = relayout([...this.nodes.values()], [...this.edges.values()]);
		this.view = null;
		this.update();
	}

	// Positions for new nodes (the old ones stay), then draw.
	update() {
		const nodes = [...this.nodes.values()], edges = [...this.edges.values()];
		const known = nodes.some((n) => this.pos.has(n.id));
		const hadEdges = this.drawnEdges > 0;
		if (!known || (!hadEdges && edges.length && !this.view)) this.pos = relayout(nodes, edges);
		else this.pos = place(nodes, edges, this.pos);
		this.savePositions();
		this.drawnEdges = edges.length;
		this.redraw();
	}

	// Draws once per frame however many flows came in it (a burst of them is one redraw).
	redraw() {
		if (this.frame) return;
		this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
	}

	draw() {
		for (const g of [this.gEdges, this.gLabels, this.gNodes]) g.replaceChildren();
		const edges = [...this.edges.values()].filter((e) => this.showPolicy || e.kind !== 'policy');
		edges.sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind));
		const labels = edges.length <= LABELS_MAX;
		const pairs = new Map();
		for (const e of edges) {
			const pk = `${e.from}\0${e.to}`;
			pairs.set(pk, (pairs.get(pk) || 0) + 1);
		}
		this.attacked = new Set(edges.filter((e) => e.kind === 'denied').map((e) => e.to));
		const seen = new Map(), ys = [...this.pos.values()].map((p) => p.y);
		this.midY = ys.length ? (Math.min(...ys) + Math.max(...ys)) / 2 : 0;
		for (const e of edges) this.drawEdge(e, labels, pairs, seen);
		for (const n of this.nodes.values()) this.drawNode(n);
		this.fit();
	}

	drawEdge(e, labels, pairs, seen) {
		const a = this.pos.get(e.from), b = this.pos.get(e.to);
		if (!a || !b) return;
		const pk = `${e.from}\0${e.to}`, i = seen.get(pk) || 0;
		seen.set(pk, i + 1);
		const bend = (i - (pairs.get(pk) - 1) / 2) * 10;
		const { d, mx, my } = curve(a, b, bend, this.midY);
		const ports = [...e.ports.keys()].sort();
		const fresh = Date.now() - (this.fresh.get(e.key) || 0) < 4000;
		const sel = this.selected;
		const dim = sel && sel !== e.key && (this.nodes.has(sel) ? e.from !== sel && e.to !== sel : true);
		const faint = dim && !this.nodes.has(sel);	// another edge is selected: keep context
		const cls = `edge ${e.kind}${fresh ? ' fresh' : ''}${sel === e.key ? ' selected' : ''}${dim ? (faint ? ' faint' : ' dim') : ''}`;
		const g = el('g', { class: cls, 'data-from': e.from, 'data-to': e.to, 'data-kind': e.kind,
			'data-ports': ports.join(' ') }, this.gEdges);
		el('path', { class: 'line', d, 'marker-end': `url(#arrow-${e.kind})` }, g);
		el('path', { class: 'hit', d }, g);
		el('title', {}, g).textContent = `${e.from} \u2192 ${e.to}: ${ports.join(', ')} (${e.kind})`;
		g.addEventListener('click', (ev) => { ev.stopPropagation(); this.select(e.key, { type: 'edge', edge: e }); });
		const text = short(ports.join(', '), 28);
		const lg = el('g', { class: `edge-label ${e.kind}${labels || e.kind === 'denied' || sel === e.key ? '' : ' hover'}${dim ? ' dim' : ''}`,
			'data-edge': e.key, transform: `translate(${mx},${my})` }, this.gLabels);
		const w = text.length * 6.4 + 8;
		el('rect', { x: -w / 2, y: -8, width: w, height: 15, rx: 3 }, lg);
		el('text', { y: 4 }, lg).textContent = text;
		g.addEventListener('mouseenter', () => lg.classList.add('show'));
		g.addEventListener('mouseleave', () => lg.classList.remove('show'));
	}

	drawNode(n) {
		const p = this.pos.get(n.id);
		if (!p) return;
		const [ns, name] = nodeText(n.id);
		const cls = ['node', n.kind, n.isolated ? 'isolated' : 'open', n.monitor ? 'monitor' : '',
			this.attacked.has(n.id) ? 'attacked' : '', this.selected === n.id ? 'selected' : ''].join(' ');
		const g = el('g', { class: cls, 'data-id': n.id, transform: `translate(${p.x},${p.y})` }, this.gNodes);
		el('rect', { x: -NODE_W / 2, y: -NODE_H / 2, width: NODE_W, height: NODE_H, rx: 7 }, g);
		el('text', { class: 'ns', y: ns ? -6 : 4 }, g).textContent = ns ? short(ns, 30) : short(name, 24);
		if (ns) el('text', { class: 'name', y: 10 }, g).textContent = short(name, 22);
		if (n.isolated) el('text', { class: 'badge', x: NODE_W / 2 - 10, y: -NODE_H / 2 + 12 }, g).textContent = '\u25cf';
		el('title', {}, g).textContent = n.id + (n.endpoints?.length ? `\n${n.endpoints.join('\n')}` : '');
		g.addEventListener('click', (ev) => { ev.stopPropagation(); this.select(n.id, { type: 'node', node: n }); });
	}

	select(key, what) {
		this.selected = key;
		this.redraw();
		this.onSelect(what);
	}

	// ---- the view: fit, zoom, pan ----

	// Everything drawn, scaled up at most 1.4 times (a small map stays small, centred).
	bounds() {
		const ps = [...this.pos.entries()].filter(([id]) => this.nodes.has(id)).map(([, p]) => p);
		const r = this.size;
		const m = 50;
		let x0 = -NODE_W, x1 = NODE_W, y0 = -NODE_H, y1 = NODE_H;
		if (ps.length) {
			x0 = Math.min(...ps.map((p) => p.x)) - NODE_W / 2 - m;
			x1 = Math.max(...ps.map((p) => p.x)) + NODE_W / 2 + m + 100;	// arcs on the right
			y0 = Math.min(...ps.map((p) => p.y)) - NODE_H / 2 - m - 40;	// arches
			y1 = Math.max(...ps.map((p) => p.y)) + NODE_H / 2 + m + 40;
		}
		const w = Math.max(x1 - x0, (r.width || 560) / 1.4), hh = Math.max(y1 - y0, (r.height || 340) / 1.4);
		return { x: (x0 + x1) / 2 - w / 2, y: (y0 + y1) / 2 - hh / 2, w, h: hh };
	}

	fit() {
		const v = this.view || this.bounds();
		this.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
	}

	resetView() {
		this.view = null;
		this.fit();
	}

	interact() {
		const svg = this.svg;
		let panned = false;
		svg.addEventListener('click', () => {
			if (panned) { panned = false; return; }
			this.selected = null; this.redraw(); this.onSelect(null);
		});
		svg.addEventListener('wheel', (ev) => {
			ev.preventDefault();
			const v = this.view || this.bounds(), r = svg.getBoundingClientRect();
			const k = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
			const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
			this.view = { x: v.x + fx * v.w * (1 - k), y: v.y + fy * v.h * (1 - k), w: v.w * k, h: v.h * k };
			this.fit();
		}, { passive: false });
		let drag = null;
		svg.addEventListener('pointerdown', (ev) => {
			if (ev.target !== svg) return;
			drag = { x: ev.clientX, y: ev.clientY, v: this.view || this.bounds(), moved: false };
			svg.setPointerCapture(ev.pointerId);
		});
		svg.addEventListener('pointermove', (ev) => {
			if (!drag) return;
			const r = svg.getBoundingClientRect();
			const s = Math.max(drag.v.w / r.width, drag.v.h / r.height);	// "meet": one scale
			const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
			drag.moved ||= Math.abs(dx) + Math.abs(dy) > 3;
			this.view = { ...drag.v, x: drag.v.x - dx * s, y: drag.v.y - dy * s };
			this.fit();
		});
		svg.addEventListener('pointerup', () => { panned = drag?.moved || false; drag = null; });
	}
}
