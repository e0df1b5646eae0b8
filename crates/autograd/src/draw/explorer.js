// The tape explorer's script (see html.rs). Every text it shows was
// computed in Rust and sits in the JSON data; this only shows and
// highlights.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("tape-data").textContent);
  const F = D.forward.length;
  const B = D.backward.length;
  const $ = (id) => document.getElementById(id);
  // pos 0 is the start; 1..F the forward steps; F+1..F+B the backward steps.
  let pos = 0;
  let selected = null;

  const svg = document.querySelector("#graph svg");
  const boxEls = [];
  const edges = new Map();
  if (svg) {
    for (const g of svg.querySelectorAll("g.box")) {
      boxEls[Number(g.dataset.box)] = g;
      g.addEventListener("click", () => selectBox(Number(g.dataset.box)));
    }
    for (const p of svg.querySelectorAll("path[data-to]")) {
      edges.set(p.dataset.from + "-" + p.dataset.to, p);
    }
  }
  // The nodes each box stands for, and for a box its output node (the last op).
  const members = [];
  D.nodes.forEach((n) => {
    if (n.box !== null) (members[n.box] = members[n.box] || []).push(n.id);
  });
  // The backward step of each node, if backward visited it.
  const stepOf = new Map();
  D.backward.forEach((s, k) => stepOf.set(s.node, k));

  let marked = [];
  function clearMarks() {
    for (const [el, cls] of marked) el.classList.remove(cls);
    marked = [];
  }
  function mark(el, cls) {
    if (el) {
      el.classList.add(cls);
      marked.push([el, cls]);
    }
  }
  const boxEl = (n) => (D.nodes[n].box === null ? null : boxEls[D.nodes[n].box]);

  function highlight(node, inputs, backward) {
    clearMarks();
    if (!D.nodes[node]) return; // a trace from another tape
    const to = D.nodes[node].box;
    for (const i of inputs.filter((i) => D.nodes[i])) {
      const from = D.nodes[i].box;
      if (from !== to) mark(boxEl(i), "inp");
      if (from !== null && to !== null) {
        mark(edges.get(from + "-" + to), backward ? "hot-back" : "hot");
      }
    }
    mark(boxEl(node), "cur");
    const el = boxEl(node);
    if (el) el.scrollIntoView({ block: "nearest", inline: "nearest" });
    list.current = node;
    list.reveal(node);
  }

  function render() {
    $("where").textContent =
      pos === 0 ? "start" : pos <= F ? "forward " + pos + "/" + F : "backward " + (pos - F) + "/" + B;
    $("prev").disabled = pos === 0;
    $("next").disabled = pos === F + B;
    $("first").disabled = pos === 0;
    $("last").disabled = pos === F + B;
    $("step-leaves").textContent = pos === F + B && D.leaves ? D.leaves : "";
    if (pos === 0) {
      clearMarks();
      list.current = null;
      list.draw();
      $("step-title").textContent = "start";
      $("step-text").textContent =
        "next (→) runs the forward pass one op at a time (" + F + " ops), then the backward " +
        "pass one chain-rule step at a time (" + B + " steps).\n\n" + D.intro;
      return;
    }
    const backward = pos > F;
    const s = backward ? D.backward[pos - F - 1] : D.forward[pos - 1];
    $("step-title").textContent = backward
      ? "backward step " + (pos - F) + " of " + B + ": ∂L/∂in = ∂L/∂out · ∂out/∂in"
      : "forward step " + pos + " of " + F;
    $("step-text").textContent = s.text;
    highlight(s.node, s.inputs, backward);
    showNode(s.node);
  }

  function go(p) {
    pos = Math.max(0, Math.min(F + B, p));
    render();
  }

  function ref(n) {
    const a = document.createElement("a");
    a.className = "ref";
    a.textContent = D.nodes[n].ref;
    a.addEventListener("click", () => showNode(n, true));
    return a;
  }

  function row(dl, label, content, id) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    if (id) dd.id = id;
    if (typeof content === "string") dd.textContent = content;
    else for (const c of content) dd.append(c);
    dl.append(dt, dd);
    return dd;
  }

  // A value with an "all values" toggle when the full tensor is embedded.
  function values(dl, label, summary, full, id) {
    const dd = row(dl, label, summary === null ? "-" : summary, id);
    if (full) {
      const b = document.createElement("button");
      b.textContent = "all values";
      let open = false;
      b.addEventListener("click", () => {
        open = !open;
        dd.textContent = open ? full : summary;
        dd.append(" ", b);
        b.textContent = open ? "summary" : "all values";
      });
      dd.append(" ", b);
    }
  }

  function showNode(n, fromClick) {
    const v = D.nodes[n];
    if (!v) return;
    if (fromClick) {
      clearSelection();
      selected = n;
      const el = boxEl(n);
      if (el) {
        el.classList.add("sel");
        el.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
      list.reveal(n);
    }
    $("node-title").textContent = v.ref + (v.kind === "op" ? "" : " (" + v.kind + ")");
    const dl = $("node-info");
    dl.textContent = "";
    row(dl, "op", v.op, "node-op");
    row(dl, "shape", v.shape, "node-shape");
    values(dl, "value", v.value, v.full_value, "node-value");
    values(dl, "grad", v.grad, v.full_grad, "node-grad");
    if (v.kind === "op") row(dl, "rule", v.formula || "(the op declares no formula)", "node-rule");
    if (v.inputs.length) {
      const parts = [];
      v.inputs.forEach((i, k) => {
        if (k) parts.push("\n");
        parts.push(ref(i), " = " + D.nodes[i].value);
      });
      row(dl, "inputs", parts, "node-inputs");
    }
    const users = D.nodes.filter((u) => u.inputs.includes(n)).map((u) => u.id);
    if (users.length && users.length <= 20) {
      const parts = [];
      users.forEach((u, k) => parts.push(k ? ", " : "", ref(u)));
      row(dl, "used by", parts);
    }
    const b = v.box;
    if (b !== null && members[b].length > 1) {
      const parts = [];
      members[b].forEach((m, k) => parts.push(k ? " " : "", ref(m)));
      row(dl, "in box", parts);
    }
    if (stepOf.has(n)) row(dl, "backward", D.backward[stepOf.get(n)].text, "node-backward");
    list.selected = n;
    list.draw();
  }

  function clearSelection() {
    if (selected !== null) {
      const el = boxEl(selected);
      if (el) el.classList.remove("sel");
    }
    selected = null;
  }

  // A box stands for its output node: the last op it holds, else its node.
  function selectBox(b) {
    const ms = members[b];
    const ops = ms.filter((m) => D.nodes[m].kind === "op");
    showNode(ops.length ? ops[ops.length - 1] : ms[ms.length - 1], true);
  }

  // The node list: only the rows in view exist, so 10,000 nodes cost no more
  // than 20.
  const ROW = 18;
  const list = {
    box: $("list"),
    inner: $("list-inner"),
    selected: null,
    current: null,
    draw() {
      const top = this.box.scrollTop;
      const first = Math.max(0, Math.floor(top / ROW) - 2);
      const last = Math.min(D.nodes.length, first + Math.ceil(this.box.clientHeight / ROW) + 5);
      this.inner.textContent = "";
      for (let k = first; k < last; k++) {
        const v = D.nodes[k];
        const r = document.createElement("div");
        r.className = "row" + (k === this.selected ? " sel" : "") + (k === this.current ? " cur" : "");
        r.style.top = k * ROW + "px";
        r.dataset.node = k;
        r.textContent = v.ref + "  " + v.op + "  " + v.shape + "  " + v.value;
        r.addEventListener("click", () => showNode(k, true));
        this.inner.append(r);
      }
    },
    reveal(n) {
      const y = n * ROW;
      if (y < this.box.scrollTop || y + ROW > this.box.scrollTop + this.box.clientHeight) {
        this.box.scrollTop = Math.max(0, y - this.box.clientHeight / 2);
      }
      this.draw();
    },
  };
  list.inner.style.height = D.nodes.length * ROW + "px";
  list.box.addEventListener("scroll", () => list.draw());

  $("next").addEventListener("click", () => go(pos + 1));
  $("prev").addEventListener("click", () => go(pos - 1));
  $("first").addEventListener("click", () => go(0));
  $("last").addEventListener("click", () => go(F + B));
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const k = e.key;
    if (k === "ArrowRight" || k === "n") go(pos + 1);
    else if (k === "ArrowLeft" || k === "p") go(pos - 1);
    else if (k === "Home") go(0);
    else if (k === "End") go(F + B);
    else return;
    e.preventDefault();
  });
  render();
  if (D.nodes.length) showNode(D.nodes.length - 1);
  // For load-time measurements (tests/explorer_browser.rs).
  if (window.performance && performance.mark) performance.mark("explorer-ready");
})();
