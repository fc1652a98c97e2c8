// The lifecycle buttons of one container, shared by the list and the container page.
// Shown only to those whose permissions allow them (the API refuses the others anyway).
import { api, session } from "./api.js";
import { confirmDialog, h } from "./dom.js";

const VERBS = [
  ["start", "Start", ["created", "exited", "dead", "failed"]],
  ["stop", "Stop", ["running", "restarting", "paused"]],
  ["restart", "Restart", ["running", "exited", "created"]],
];

// Containers this tab is deleting or has deleted: their late events (die, destroy) must
// not refresh them (the refresh would only meet the 404 of a container that is gone).
export const deleting = new Set();

// `onDone(container | null)`: the new object, or null once it is deleted; `onError(err)`.
export function actionButtons(container, { onDone, onError }) {
  const buttons = [];
  const label = container.name || container.cuid;
  const run = async (button, work) => {
    for (const b of buttons) b.disabled = true;
    const text = button.textContent;
    button.textContent = `${text}…`;
    try {
      onDone(await work());
    } catch (err) {
      onError(err);
      for (const b of buttons) b.disabled = false;
    } finally {
      button.textContent = text;
    }
  };
  if (session.can("containers:control")) {
    for (const [verb, text, from] of VERBS) {
      const button = h("button", {
        type: "button",
        class: "secondary",
        "data-action": verb,
        "aria-label": `${text} ${label}`,
        disabled: !from.includes(container.status),
      }, text);
      button.addEventListener("click", () =>
        run(button, () => api("POST", `/containers/${container.cuid}/${verb}`)),
      );
      buttons.push(button);
    }
  }
  if (session.can("containers:delete")) {
    const button = h("button", {
      type: "button", class: "danger", "data-action": "delete", "aria-label": `Delete ${label}`,
    }, "Delete");
    button.addEventListener("click", async () => {
      const yes = await confirmDialog(`Delete ${label}? Its files in /app go too.`, "Delete");
      if (!yes) return;
      await run(button, async () => {
        deleting.add(container.cuid);
        try {
          await api("DELETE", `/containers/${container.cuid}`);
        } catch (err) {
          deleting.delete(container.cuid);
          throw err;
        }
        return null;
      });
    });
    buttons.push(button);
  }
  return buttons;
}
