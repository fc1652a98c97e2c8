// Sign-in: credentials exchanged for a bearer token (POST /auth/token with Basic).
import { signIn } from "./api.js";
import { errorBox, h, replace } from "./dom.js";

export function signInPage(main, { navigate }) {
  const params = new URLSearchParams(location.search);
  const problem = h("div", { "aria-live": "polite" });
  if (params.get("expired")) {
    problem.append(h("p", { class: "notice" }, "Your session ended; sign in again."));
  }
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", {
    id: "password", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-label": "Sign in" },
    h("h1", {}, "Sign in to Dockyard"),
    problem,
    h("div", { class: "field" }, h("label", { for: "username" }, "User name"), user),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), pass),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    replace(problem);
    try {
      await signIn(user.value, pass.value);
      const next = params.get("next");
      navigate(next && next.startsWith("/ui/") && next !== "/ui/signin" ? next : "/ui/containers", {
        replaceState: true,
      });
    } catch (err) {
      replace(problem, errorBox(err));
      submit.disabled = false;
      pass.select();
    }
  });
  replace(main, form);
  user.focus();
}
