// Building the page from data, safely: every string becomes a text node, never markup.
// There is no innerHTML anywhere in the console; prompts and answers are user input.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name.startsWith("on") || name === "style" || name === "innerHTML") {
      throw new Error(`refusing to set ${name} from a template`);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened. */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An HTML element: h("a", {href: "#/x"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** A definition list from [label, value] pairs; a value of null or undefined is left out. */
export function facts(pairs, className = "facts") {
  const list = h("dl", { class: className });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(h("div", {}, h("dt", {}, label), h("dd", {}, value)));
  }
  return list;
}

/** Text that keeps its line breaks (CSS white-space: pre-wrap), e.g. a prompt or an answer. */
export function prose(text, className = "prose") {
  return h("pre", { class: className }, text ?? "");
}

/** A status as a coloured word: badge("succeeded"), badge("missing_credentials", "missing credentials"). */
export function badge(status, text = status) {
  return h("span", { class: `badge status-${status}` }, text);
}

export function notice(message, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

/** Says something to screen readers (the live region in index.html). */
export function announce(message) {
  const region = document.getElementById("announce");
  if (region) region.textContent = message;
}
