// The resource owner's page: sign in, list the apps that hold grants, revoke them.
// Everything the server sends is put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  const el = (id) => document.getElementById(id);
  const statusBox = el("status");
  const signinSection = el("signin-section");
  const signinForm = el("signin");
  const appsSection = el("apps-section");
  const appsHeading = el("apps-heading");
  const list = el("apps");
  const noApps = el("no-apps");
  const revokeAllButton = el("revoke-all");
  const signoutButton = el("signout");

  // This session's CSRF token: sent in X-CSRF-Token with every change.
  let csrf = null;
  let nextId = 0;

  // Announced by the aria-live region.
  function say(text) {
    statusBox.textContent = text;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && typeof body.error_description === "string") {
        return body.error_description;
      }
      if (body && typeof body.error === "string") {
        return body.error;
      }
    } catch (_) {
      // Not JSON: fall through.
    }
    return "the server answered " + response.status;
  }

  function call(method, path, options) {
    const opts = options || {};
    const headers = {};
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (opts.change && csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    return fetch(path, {
      method: method,
      headers: headers,
      body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
      credentials: "same-origin",
      cache: "no-store",
    });
  }

  function showSignIn(message) {
    csrf = null;
    list.replaceChildren();
    appsSection.hidden = true;
    signinSection.hidden = false;
    say(message);
  }

  function sessionEnded() {
    showSignIn("Your session has ended; sign in again.");
    el("username").focus();
  }

  async function showApps(session) {
    csrf = String(session.csrf_token);
    el("user").textContent = String(session.user);
    signinSection.hidden = true;
    appsSection.hidden = false;
    await loadApps();
  }

  function updateEmpty() {
    const empty = list.children.length === 0;
    noApps.hidden = !empty;
    revokeAllButton.disabled = empty;
  }

  function appItem(app) {
    const id = String(app.client_id);
    const named = typeof app.client_name === "string" && app.client_name !== "";
    const name = named ? app.client_name : id;

    const item = document.createElement("li");
    item.setAttribute("data-client-id", id);
    const about = document.createElement("div");
    about.className = "app";
    const nameText = document.createElement("span");
    nameText.className = "app-name";
    nameText.id = "app-name-" + nextId++;
    nameText.textContent = name;
    about.append(nameText);
    if (named) {
      const idText = document.createElement("span");
      idText.className = "app-id";
      idText.textContent = id;
      about.append(idText);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Revoke";
    // Read as "Revoke, <app name>" by screen readers.
    button.setAttribute("aria-describedby", nameText.id);
    button.addEventListener("click", () => revoke(item, id, name, button));
    item.append(about, button);
    return item;
  }

  function appCount(n) {
    return n === 1 ? "1 app holds" : n + " apps hold";
  }

  async function loadApps() {
    const response = await call("GET", "/users/me/authorizations");
    if (response.status === 401) {
      sessionEnded();
      return;
    }
    if (!response.ok) {
      say("Could not list your apps: " + (await errorText(response)));
      return;
    }
    const body = await response.json();
    const apps = Array.isArray(body.authorizations) ? body.authorizations : [];
    list.replaceChildren(...apps.map(appItem));
    updateEmpty();
    say(appCount(apps.length) + " access to your account.");
  }

  // After an app leaves the list, keep the keyboard focus somewhere useful.
  function focusAfterRemoval(neighbour) {
    const button = neighbour && neighbour.querySelector("button");
    if (button) {
      button.focus();
    } else {
      appsHeading.focus();
    }
  }

  async function revoke(item, id, name, button) {
    button.disabled = true;
    say("Revoking access for " + name + "…");
    try {
      const response = await call(
        "DELETE",
        "/users/me/authorizations/" + encodeURIComponent(id),
        { change: true },
      );
      if (response.status === 204) {
        const neighbour = item.nextElementSibling || item.previousElementSibling;
        item.remove();
        updateEmpty();
        focusAfterRemoval(neighbour);
        say("Revoked access for " + name + ".");
        return;
      }
      if (response.status === 401) {
        sessionEnded();
        return;
      }
      say("Could not revoke access for " + name + ": " + (await errorText(response)));
    } catch (_) {
      say("Could not reach the server; try again.");
    }
    button.disabled = false;
  }

  async function revokeAll() {
    revokeAllButton.disabled = true;
    say("Signing out of all apps…");
    try {
      const response = await call("DELETE", "/users/me/authorizations", { change: true });
      if (response.status === 204) {
        list.replaceChildren();
        updateEmpty();
        appsHeading.focus();
        say("Signed out of all apps: none holds access to your account now.");
        return;
      }
      if (response.status === 401) {
        sessionEnded();
        return;
      }
      say("Could not sign out of all apps: " + (await errorText(response)));
    } catch (_) {
      say("Could not reach the server; try again.");
    }
    updateEmpty();
  }

  async function signIn(event) {
    event.preventDefault();
    const submit = signinForm.querySelector("button[type=submit]");
    const password = signinForm.elements.password;
    submit.disabled = true;
    say("Signing in…");
    try {
      const response = await call("POST", "/account/session", {
        json: {
          username: signinForm.elements.username.value,
          password: password.value,
        },
      });
      if (response.ok) {
        password.value = "";
        await showApps(await response.json());
        appsHeading.focus();
      } else if (response.status === 429) {
        const wait = response.headers.get("Retry-After");
        say("Too many failed attempts; try again in " + (wait || "a few") + " seconds.");
      } else if (response.status === 401) {
        say("Wrong username or password.");
        password.focus();
      } else {
        say("Could not sign in: " + (await errorText(response)));
      }
    } catch (_) {
      say("Could not reach the server; try again.");
    } finally {
      submit.disabled = false;
    }
  }

  async function signOut() {
    try {
      const response = await call("DELETE", "/account/session", { change: true });
      if (response.status === 204 || response.status === 401) {
        showSignIn("Signed out.");
        el("username").focus();
        return;
      }
      say("Could not sign out: " + (await errorText(response)));
    } catch (_) {
      say("Could not reach the server; try again.");
    }
  }

  signinForm.addEventListener("submit", signIn);
  revokeAllButton.addEventListener("click", revokeAll);
  signoutButton.addEventListener("click", signOut);

  // A reload keeps the session: ask the server whether there is one.
  (async function start() {
    try {
      const response = await call("GET", "/account/session");
      if (response.ok) {
        await showApps(await response.json());
        return;
      }
      showSignIn("");
    } catch (_) {
      showSignIn("Could not reach the server; reload the page to try again.");
    }
  })();
})();
