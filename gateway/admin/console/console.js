// The console's controller: sign-in (pasted token or OIDC), routes (#/alerts, #/people,
// #/audit) and the notice line. Views are async functions returning a node; a view that
// finishes after the officer moved on is dropped.

import { renderAlert, renderInbox } from "./alerts.js";
import { ApiError, describe, session } from "./api.js";
import { renderAudit } from "./audit.js";
import { h } from "./dom.js";
import { renderPeople, renderPerson } from "./people.js";

const SSO_ERRORS = {
  sso_state_mismatch:
    "Sign-in did not complete: the answer from the identity provider does not belong to this browser's sign-in (it may have expired). Try again.",
  sso_denied: "The identity provider did not sign you in. Try again, or paste a token.",
  sso_code_refused: "The identity provider refused to finish the sign-in. Try again.",
  sso_id_token_invalid: "The identity provider's ID token failed verification, so sign-in was refused. Tell your Wardgate administrator.",
  sso_id_token_missing: "The identity provider returned no ID token, so sign-in was refused. Tell your Wardgate administrator.",
  sso_token_missing: "The identity provider returned no token the console can use. Tell your Wardgate administrator.",
  sso_token_too_large: "The identity provider's token is too large to hand to the console; paste a token instead.",
  sso_provider_unreachable: "The identity provider could not be reached. Try again later, or paste a token.",
  sso_provider_misconfigured: "The identity provider's discovery document names a different issuer, so sign-in was refused. Tell your Wardgate administrator.",
};

const ROUTES = [
  [/^\/alerts\/([^/]+)$/, (ctx, params, id) => renderAlert(ctx, id)],
  [/^\/alerts$/, (ctx, params) => renderInbox(ctx, params)],
  [/^\/people\/([^/]+)$/, (ctx, params, subject) => renderPerson(ctx, subject)],
  [/^\/people$/, () => renderPeople()],
  [/^\/audit$/, (ctx, params) => renderAudit(ctx, params)],
];

const view = document.getElementById("view");
const notice = document.getElementById("notice");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
let sso = false;
let generation = 0;

function notify(text, kind = "error") {
  notice.textContent = text;
  notice.className = `notice notice-${kind === "ok" ? "ok" : "error"}`;
  notice.hidden = !text;
}

function setSignedIn(signedIn) {
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
}

function showSignIn(message = "") {
  generation += 1;
  setSignedIn(false);
  notify(message);
  const input = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "off",
    spellcheck: false,
  });
  const form = h(
    "form",
    { className: "sign-in-form" },
    h("label", { htmlFor: "token" }, "Officer bearer token or API key"),
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = session.set(input.value);
    if (problem) {
      notify(problem);
      return;
    }
    notify("");
    if (window.location.hash.startsWith("#/")) route();
    else window.location.hash = "#/alerts"; // hashchange routes
  });
  view.replaceChildren(
    h(
      "section",
      { className: "sign-in" },
      h("h1", {}, "Sign in"),
      h("p", {}, "The token stays in this browser tab only and is sent to this console's API."),
      form,
      sso && [
        h("p", { className: "or" }, "or"),
        h("a", { className: "button", href: "/console/login" }, "Sign in with your company account"),
      ],
    ),
  );
  input.focus();
}

function signOut(message = "") {
  session.clear();
  showSignIn(message);
}

/** What the views call when the API refuses: sign in again, or say what went wrong. */
function fail(error) {
  if (error instanceof ApiError && error.isSignInProblem) signOut(describe(error));
  else notify(describe(error));
}

const ctx = {
  notify,
  fail,
  go: (hash) => {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  },
  refresh: () => route({ keepNotice: true }),
};

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/alerts";
  const [path, query = ""] = raw.split("?", 2);
  return { path, params: new URLSearchParams(query) };
}

async function route({ keepNotice = false } = {}) {
  if (!session.token()) {
    showSignIn();
    return;
  }
  const mine = ++generation;
  setSignedIn(true);
  if (!keepNotice) notify("");
  const { path, params } = parseHash();
  const match = ROUTES.map(([pattern, render]) => [path.match(pattern), render]).find(([m]) => m);
  if (!match) {
    view.replaceChildren(h("p", { className: "empty" }, "There is no such page in the console."));
    return;
  }
  const [found, render] = match;
  view.setAttribute("aria-busy", "true");
  try {
    const node = await render(ctx, params, ...found.slice(1).map(decodeURIComponent));
    if (mine === generation) view.replaceChildren(node);
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.isSignInProblem) {
      signOut(describe(error));
      return;
    }
    view.replaceChildren(h("p", { className: "empty" }, "This page could not be loaded."));
    notify(describe(error));
  } finally {
    if (mine === generation) view.removeAttribute("aria-busy");
  }
}

/** A failed OIDC sign-in comes back as #sso_error=<id>; only known ids are shown. */
function takeSsoError() {
  const match = window.location.hash.match(/^#sso_error=([a-z_]+)$/);
  if (!match) return "";
  window.history.replaceState(null, "", window.location.pathname);
  const known = Object.hasOwn(SSO_ERRORS, match[1]); // not "constructor" from the prototype
  return known ? SSO_ERRORS[match[1]] : "Sign-in with your company account failed. Try again.";
}

async function loadConfig() {
  try {
    const response = await fetch("/console/config", { credentials: "omit", cache: "no-store" });
    return response.ok ? await response.json() : {};
  } catch {
    return {};
  }
}

/** After an OIDC callback the server holds the token for us once (HttpOnly cookie). */
async function takeSsoToken() {
  try {
    const response = await fetch("/console/session", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status !== 200) return;
    const { token } = await response.json();
    if (token) session.set(token);
  } catch {
    // No hand-off: the officer signs in again; nothing to clean up.
  }
}

async function start() {
  signOutButton.addEventListener("click", () => signOut("You are signed out."));
  window.addEventListener("hashchange", () => route());
  const ssoError = takeSsoError();
  sso = Boolean((await loadConfig()).sso);
  if (sso && !session.token()) await takeSsoToken();
  if (ssoError || !session.token()) showSignIn(ssoError);
  else route();
}

start();
