// Where the service map puts its nodes. Pure functions, no DOM.
//
// The first layout of a map is layered, as Graphviz's dot draws: callers on the left, callees
// on the right (ranks by longest path, cycles broken), each column ordered to cross few edges,
// a column taller than the map is high folded into staggered sub-columns. After that a node
// never moves: a new node goes beside its neighbours into the nearest free spot, so what an
// operator has looked at stays where it was however many flows come. Only relayout() (the
// user's button, or a map that had no edge yet) computes everything again.

export const NODE_W = 168;	// a node's box
export const NODE_H = 40;
export const DY = 58;		// rows of a column
export const SUB = 196;		// sub-columns of one rank
export const GAP = 100;		// between the last sub-column of a rank and the next rank

const key = (n) => n.id;

// Edges between distinct known nodes, as adjacency lists (both ways), in a stable order.
function adjacency(nodes, edges) {
	const out = new Map(), inn = new Map();
	for (const n of nodes) { out.set(n.id, []); inn.set(n.id, []); }
	for (const e of edges) {
		if (e.from === e.to || !out.has(e.from) || !out.has(e.to)) continue;
		if (!out.get(e.from).includes(e.to)) out.get(e.from).push(e.to);
		if (!inn.get(e.to).includes(e.from)) inn.get(e.to).push(e.from);
	}
	return { out, inn };
}

// Rank of every node: longest path from a source over the edges that are not back edges of
// a depth-first search in id order (so cycles cannot make ranks grow without end).
export function ranks(nodes, edges) {
	const ids = nodes.map(key).sort();
	const { out } = adjacency(nodes, edges);
	const state = new Map(), post = [], dag = new Map(ids.map((id) => [id, []]));
	const visit = (id) => {
		state.set(id, 1);
		for (const to of out.get(id)) {
			if (state.get(to) === 1) continue;	// a back edge: ignored for ranking
			dag.get(id).push(to);
			if (!state.get(to)) visit(to);
		}
		state.set(id, 2);
		post.push(id);
	};
	for (const id of ids) if (!state.get(id)) visit(id);
	const rank = new Map(ids.map((id) => [id, 0]));
	for (const id of post.reverse())	// a topological order of the DAG
		for (const to of dag.get(id)) rank.set(to, Math.max(rank.get(to), rank.get(id) + 1));
	return rank;
}

// Orders each rank by the mean position of its neighbours in the ranks before and after
// (a few sweeps down and up), starting from id order.
function order(columns, nodes, edges) {
	const { out, inn } = adjacency(nodes, edges);
	const pos = new Map();
	const place = (col) => col.forEach((id, i) => pos.set(id, i / Math.max(1, col.length - 1)));
	columns.forEach((c) => { c.sort(); place(c); });
	const sweep = (col, near) => {
		const bary = new Map(col.map((id) => {
			const ns = near(id).filter((n) => pos.has(n));
			return [id, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(id)];
		}));
		col.sort((a, b) => bary.get(a) - bary.get(b) || (a < b ? -1 : 1));
		place(col);
	};
	for (let round = 0; round < 4; round++) {
		for (let r = 1; r < columns.length; r++) sweep(columns[r], (id) => inn.get(id));
		for (let r = columns.length - 2; r >= 0; r--) sweep(columns[r], (id) => out.get(id));
	}
}

// Sub-columns so that no column is much taller than the map is wide (a 16:9 screen).
function folds(n, total) {
	const rows = Math.max(8, Math.ceil(Math.sqrt(total) * 2.3));
	return Math.max(1, Math.ceil(n / rows));
}

// Columns of the map: ranks, with every sink (called, calls nobody) in the last one, and
// long chains (services calling services calling services...) folded into a few columns
// so that the map stays about as wide as it is high; an edge never goes right to left.
function columnsOf(nodes, edges) {
	const rank = ranks(nodes, edges);
	const { out, inn } = adjacency(nodes, edges);
	const last = Math.max(0, ...rank.values());
	for (const [id] of rank) if (!out.get(id).length && inn.get(id).length) rank.set(id, last);
	const want = Math.min(last + 1, Math.max(4, Math.ceil(Math.sqrt(nodes.length * 0.4))));
	const columns = [];
	for (const [id, r] of rank) {
		const c = Math.floor((r * want) / (last + 1));
		(columns[c] = columns[c] || []).push(id);
	}
	return columns.filter((c) => c && c.length);
}

// The whole layout from nothing: Map id -> {x, y}.
export function relayout(nodes, edges) {
	const cols = columnsOf(nodes, edges);
	order(cols, nodes, edges);
	const pos = new Map();
	let x = 0;
	for (const col of cols) {
		const k = folds(col.length, nodes.length), step = DY / k;
		const top = -((col.length - 1) * step) / 2;
		col.forEach((id, i) => pos.set(id, { x: x + (i % k) * SUB, y: Math.round(top + i * step) }));
		x += (k - 1) * SUB + NODE_W + GAP;
	}
	return pos;
}

// Is there room for a node at (x, y) among pos?
function free(pos, x, y) {
	for (const p of pos.values())
		if (Math.abs(p.x - x) < NODE_W + 16 && Math.abs(p.y - y) < NODE_H + 12) return false;
	return true;
}

// The nearest free spot to (x, y): the same column first, up and down by half rows, then
// the columns beside it.
function nearestFree(pos, x, y) {
	for (let dx = 0; dx < 64; dx++) {
		const cx = x + (dx % 2 ? 1 : -1) * Math.ceil(dx / 2) * (NODE_W + GAP);
		for (let k = 0; k < 80; k++) {
			const cy = y + (k % 2 ? 1 : -1) * Math.ceil(k / 2) * (DY / 2);
			if (free(pos, cx, cy)) return { x: cx, y: Math.round(cy) };
		}
	}
	return { x, y };
}

// Where a new node goes: into the first column right of its callers, else the last column
// left of its callees (a new column only past the map's edge), else the leftmost column; at
// the mean height of its placed neighbours, in the nearest free spot.
function spotFor(id, pos, out, inn) {
	const from = inn.get(id).filter((n) => pos.has(n)).map((n) => pos.get(n));
	const to = out.get(id).filter((n) => pos.has(n)).map((n) => pos.get(n));
	const near = from.concat(to);
	const all = [...pos.values()];
	const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
	let x, y;
	if (from.length) {
		const m = Math.max(...from.map((p) => p.x));
		x = xs.find((v) => v > m) ?? m + NODE_W + GAP;
	} else if (to.length) {
		const m = Math.min(...to.map((p) => p.x));
		x = [...xs].reverse().find((v) => v < m) ?? m - NODE_W - GAP;
	} else {
		x = xs.length ? xs[0] : 0;
	}
	if (near.length) y = near.reduce((s, p) => s + p.y, 0) / near.length;
	else y = all.length ? Math.max(...all.filter((p) => p.x === x).map((p) => p.y), -DY) + DY : 0;
	return nearestFree(pos, x, Math.round(y / (DY / 2)) * (DY / 2));
}

// Positions for nodes given the ones they had (prev: Map id -> {x, y}): every node of prev
// that is still there keeps its place; new ones are placed one by one, those with the most
// placed neighbours first. Returns a new Map.
export function place(nodes, edges, prev) {
	const pos = new Map();
	for (const n of nodes) if (prev.has(n.id)) pos.set(n.id, prev.get(n.id));
	const { out, inn } = adjacency(nodes, edges);
	const todo = nodes.map(key).filter((id) => !pos.has(id)).sort();
	const placed = (id) => out.get(id).concat(inn.get(id)).filter((n) => pos.has(n)).length;
	while (todo.length) {
		let best = 0;
		for (let i = 1; i < todo.length; i++) if (placed(todo[i]) > placed(todo[best])) best = i;
		const id = todo.splice(best, 1)[0];
		pos.set(id, spotFor(id, pos, out, inn));
	}
	return pos;
}
