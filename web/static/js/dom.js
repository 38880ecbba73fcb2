// DOM helpers. Nothing here parses HTML: every text goes in through
// textContent or a Text node, so a device-provided string such as
// `<img src=x onerror=alert(1)>` always shows up literally.

/**
 * el builds an element. attrs: "class", "text" (textContent), "dataset"
 * (object), "on<event>" (listener function), any other key becomes an
 * attribute (true -> empty attribute, false/null/undefined -> skipped).
 * Children are nodes, strings (as text) or arrays of them; null is skipped.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** append adds children (nodes, strings as text, nested arrays) to node. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** $ is document.getElementById. */
export const $ = (id) => document.getElementById(id);

/** setText sets textContent only when it changes (cheap for hot paths). */
export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

/**
 * frame runs fn on the next animation frame, or soon when the tab is
 * hidden (browsers pause requestAnimationFrame there, and live state
 * should still be current when the user comes back).
 */
export function frame(fn) {
  if (document.hidden) setTimeout(fn, 250);
  else requestAnimationFrame(fn);
}

/** showAlert puts an error (or clears it with a falsy message) in a box. */
export function showAlert(box, message) {
  box.textContent = message ? String(message) : '';
  box.hidden = !message;
}
