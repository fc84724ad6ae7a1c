// The console's entry point: which view the URL's fragment names, the sign-in gate, the theme.
// Views live in views/, one file each; every one renders into <main> from API data.

import { forgetKey, onUnauthorized, storedKey } from "./api.js";
import { announce, clear } from "./dom.js";
import * as history from "./views/history.js";
import * as login from "./views/login.js";
import * as newTask from "./views/new.js";
import * as providers from "./views/providers.js";
import * as task from "./views/task.js";

const VIEWS = { history, new: newTask, providers, task, login };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOut = document.getElementById("signout");
let current = null; // the AbortController of the view on screen

/** The fragment as {view, id, params}: "#/task/ID", "#/history?q=x", ... */
export function parseRoute(hash = location.hash) {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?");
  const [view = "", id = null] = path.split("/").map(decodeURIComponent);
  return { view: view || "history", id, params: new URLSearchParams(search) };
}

export function go(hash) {
  if (location.hash === hash) show();
  else location.hash = hash;
}

async function show(message = null) {
  current?.abort();
  current = new AbortController();
  const route = parseRoute();
  const signedIn = Boolean(storedKey());
  nav.hidden = signOut.hidden = !signedIn;
  let view = VIEWS[route.view] ?? history;
  if (!signedIn || view === login) {
    view = login;
    route.next = route.view === "login" ? "#/history" : location.hash || "#/history";
  }
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.view === route.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  document.title = `${view.title} · ReasoningAgent console`;
  announce(view.title);
  try {
    await view.render(main, { ...route, message, signal: current.signal, go });
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
}

onUnauthorized((error) => {
  forgetKey();
  show(`Signed out: ${error.explain()}`);
});

signOut.addEventListener("click", () => {
  forgetKey();
  go("#/login");
});

// --- theme: automatic (the system's), light or dark; the choice is not a secret ---------
const THEMES = ["auto", "light", "dark"];
const themeButton = document.getElementById("theme");

function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  themeButton.textContent = `Theme: ${theme}`;
  themeButton.setAttribute("aria-label", `Colour theme: ${theme === "auto" ? "automatic" : theme}`);
}

themeButton.addEventListener("click", () => {
  const next = THEMES[(THEMES.indexOf(localStorage.getItem("reasoning-agent.theme") ?? "auto") + 1) % 3];
  localStorage.setItem("reasoning-agent.theme", next);
  applyTheme(next);
});
applyTheme(localStorage.getItem("reasoning-agent.theme") ?? "auto");

window.addEventListener("hashchange", () => show());
show();
