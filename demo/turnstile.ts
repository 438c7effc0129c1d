import type { AuthClient, TurnstileAction } from "../client";

/**
 * Cloudflare Turnstile's widget, only where the API asks for it (GET /turnstile gives a site key):
 * then Cloudflare's script is loaded and a widget rendered into each `[data-turnstile="<action>"]`
 * element; the client reads its token for that action (turnstileToken) and the widget is reset, a
 * token being good for one request. Without a site key nothing is loaded.
 */

interface Turnstile {
  render(container: HTMLElement, options: { sitekey: string; action: string }): string;
  getResponse(widgetId: string): string | undefined;
  reset(widgetId: string): void;
}
const SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";
const widgets = new Map<string, string>();
const turnstile = () => (globalThis as { turnstile?: Turnstile }).turnstile;

/** The client's turnstileToken: the widget's current token for the action, or none. */
export function turnstileToken(action: TurnstileAction): string | undefined {
  const id = widgets.get(action);
  const api = turnstile();
  if (id === undefined || !api) return undefined;
  const token = api.getResponse(id);
  api.reset(id);
  return token || undefined;
}

/** Loads the widget when the API has a site key. */
export async function startTurnstile(client: AuthClient) {
  const siteKey = await client.turnstileSiteKey();
  if (!siteKey) return;
  await new Promise<void>((resolve, reject) => {
    const script = Object.assign(document.createElement("script"), { src: SCRIPT, async: true, onload: () => resolve(), onerror: reject });
    document.head.append(script);
  });
  for (const el of document.querySelectorAll<HTMLElement>("[data-turnstile]")) {
    const action = el.dataset.turnstile!;
    el.hidden = false;
    widgets.set(action, turnstile()!.render(el, { sitekey: siteKey, action }));
  }
}
