/**
 * The live page's graph: cytoscape with the page's style, and the diff that brings it to a
 * new set of elements in place (so zoom and pan survive a refresh) and fits the view only when
 * the set of elements changed.
 *
 *     graphElements (model.js) -> GraphView.update -> remove the gone, update or add the rest
 *
 * For tests and scripts: `window.vnetGraph` is the cytoscape instance (see model.js for the
 * element ids and classes).
 */

import { VM_W } from "./model.js";

const colors = {
  ink: "#1f2933",
  muted: "#616e7c",
  star: "#8a94a0",
  up: "#14935c",
  connecting: "#d99a00",
  draining: "#d0453a",
  app: "#8e3fb0",
};

/** Margin (px) around the graph when the view is fitted. */
const FIT_PADDING = 40;

/** How each class of element looks; the colours are the legend's in index.html. */
const STYLE = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "font-size": 13,
      color: colors.ink,
      "text-valign": "center",
      "text-halign": "center",
      "text-wrap": "wrap",
      "min-zoomed-font-size": 6,
    },
  },
  {
    selector: "#proxy",
    style: {
      shape: "round-hexagon",
      width: 120,
      height: 56,
      "background-color": "#243b53",
      color: "#fff",
      "font-weight": "bold",
      "font-size": 15,
    },
  },
  {
    selector: "node.host",
    style: {
      shape: "round-rectangle",
      width: 150,
      height: 52,
      "background-color": "#e6effc",
      "border-width": 2,
      "border-color": "#3367d6",
      "font-weight": "bold",
      "line-height": 1.3,
    },
  },
  {
    selector: "node.host.offline",
    style: {
      "background-color": "#f1f3f5",
      "border-color": "#9aa5b1",
      "border-style": "dashed",
      color: colors.muted,
    },
  },
  {
    selector: "node.vm",
    style: {
      shape: "round-rectangle",
      width: VM_W - 10,
      height: 26,
      "background-color": "#fff8e6",
      "border-width": 1.5,
      "border-color": "#c99a2e",
      "font-family": "DejaVu Sans Mono, Liberation Mono, monospace",
      "font-size": 11,
    },
  },
  {
    selector: "node.vm.unknown",
    style: {
      "background-color": "#f1f3f5",
      "border-color": "#9aa5b1",
      "border-style": "dashed",
      color: colors.muted,
    },
  },
  {
    selector: "edge",
    style: { "curve-style": "straight", width: 2, "line-color": colors.star },
  },
  {
    selector: "edge.attach",
    style: { width: 1.5, "line-color": "#c3cad3" },
  },
  {
    selector: "edge.star",
    style: {
      width: 2,
      "line-style": "dashed",
      "line-dash-pattern": [7, 5],
      "line-color": colors.star,
      label: "data(label)",
      "font-size": 11,
      color: colors.muted,
      "text-background-color": "#fff",
      "text-background-opacity": 0.9,
      "text-background-padding": 2,
    },
  },
  {
    selector: "edge.fast, edge.app",
    style: {
      "curve-style": "unbundled-bezier",
      "control-point-weights": 0.5,
      "control-point-distances": (ele) => ele.data("bend"),
      label: "data(label)",
      "font-size": 11,
      "text-background-color": "#fff",
      "text-background-opacity": 0.9,
      "text-background-padding": 2,
      "text-background-shape": "round-rectangle",
    },
  },
  {
    selector: "edge.fast",
    style: {
      width: 5,
      "line-color": colors.up,
      color: colors.up,
      "font-weight": "bold",
      "z-index": 2,
    },
  },
  {
    selector: "edge.fast.connecting",
    style: {
      "line-color": colors.connecting,
      color: colors.connecting,
      "line-style": "dashed",
      width: 4,
    },
  },
  {
    selector: "edge.fast.draining",
    style: {
      "line-color": colors.draining,
      color: colors.draining,
      "line-style": "dotted",
      width: 4,
    },
  },
  {
    selector: "edge.app",
    style: {
      width: (ele) => 1.5 + 7 * ele.data("weight"),
      "line-color": colors.app,
      "line-opacity": 0.75,
      color: colors.app,
      "z-index": 1,
    },
  },
];

/** The graph in `container`, kept equal to the elements it is given. */
export class GraphView {
  /** Ids of the elements last shown, sorted: the view is refitted only when they change. */
  #structureKey = "";

  /** @param {HTMLElement} container */
  constructor(container) {
    // `cytoscape` is the global that /vendor/cytoscape.min.js defines (loaded before this file).
    this.cy = cytoscape({
      container,
      style: STYLE,
      layout: { name: "preset" },
      autoungrabify: true,
      boxSelectionEnabled: false,
      minZoom: 0.15,
      maxZoom: 3,
    });
  }

  /**
   * Removes what is no longer wanted, then updates or adds nodes (at `pos`) and edges.
   *
   * @param {import("./model.js").GraphElement[]} elements
   * @param {Map<string, { x: number, y: number }>} pos
   */
  update(elements, pos) {
    const cy = this.cy;
    const key = elements.map((el) => el.data.id).sort().join(" ");
    cy.batch(() => {
      const wanted = new Set(elements.map((el) => el.data.id));
      cy.elements().filter((el) => !wanted.has(el.id())).remove();
      for (const el of elements.filter((x) => x.group === "nodes")) this.#upsert(el, pos);
      for (const el of elements.filter((x) => x.group === "edges")) this.#upsert(el, pos);
    });
    if (key !== this.#structureKey) {
      this.#structureKey = key;
      this.fit();
    }
  }

  /** Fits the whole graph in the view. */
  fit() {
    this.cy.fit(undefined, FIT_PADDING);
  }

  /**
   * How many elements match `selector`, as text (for the body's data attributes).
   *
   * @param {string} selector
   */
  count(selector) {
    return String(this.cy.$(selector).length);
  }

  /**
   * @param {import("./model.js").GraphElement} el
   * @param {Map<string, { x: number, y: number }>} pos
   */
  #upsert(el, pos) {
    const cy = this.cy;
    const found = cy.getElementById(el.data.id);
    if (
      found.nonempty() && el.group === "edges" &&
      (found.data("source") !== el.data.source || found.data("target") !== el.data.target)
    ) {
      found.remove(); // endpoints of an edge cannot change in place
    }
    const existing = cy.getElementById(el.data.id);
    if (existing.nonempty()) {
      existing.data(el.data);
      existing.classes(el.classes);
      if (el.group === "nodes") existing.position(pos.get(el.data.id));
    } else {
      cy.add({ ...el, position: el.group === "nodes" ? pos.get(el.data.id) : undefined });
    }
  }
}
