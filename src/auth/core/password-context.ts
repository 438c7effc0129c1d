import type { Config } from "../../config";

/**
 * The words a new password must not contain (ASVS 6.2.11): the account's own (its username, its
 * address and the address's local part) and the deployment's: the built-in list below, the words of
 * APP_NAME, the labels of the ISSUER and APP_URL hosts, and PASSWORD_CONTEXT_WORDS. Compared without
 * case, spaces, dots, dashes or underscores ("Edge.Auth 2024" contains "edge-auth"). docs/passwords.md.
 */

/** What a new password's owner is known by: the words the password must not contain. */
export interface PasswordOwner {
  username: string | null;
  email: string | null;
}

/** Always refused: this product's own names and the one role every deployment has. */
export const BUILT_IN_CONTEXT_WORDS = ["edge-auth", "edgeauth", "admin"];

// Host labels that name no deployment: leaving them out keeps "localhost" or "api" from refusing
// passwords that merely contain a common word.
export const GENERIC_LABELS = new Set([
  "www",
  "localhost",
  "auth",
  "login",
  "account",
  "accounts",
  "api",
  "app",
  "apps",
  "dev",
  "test",
  "staging",
  "workers",
  "pages",
]);

// The shortest word worth refusing: shorter ones (a two-letter username) would refuse half of all passwords.
const MIN_WORD = 3;
const MIN_LABEL = 4;

/** Lowercased, NFC, without the separators people put between words. */
export const squash = (s: string) =>
  s
    .normalize("NFC")
    .toLowerCase()
    .replace(/[\s._-]+/gu, "");

function hostLabels(url: string): string[] {
  if (!url) return [];
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return [];
  }
  const labels = host.split(".");
  // The last label is a top-level domain (com, dev, io): no deployment's own word.
  if (labels.length > 1) labels.pop();
  return labels.filter((l) => l.length >= MIN_LABEL && !/^\d+$/.test(l) && !GENERIC_LABELS.has(l));
}

/** The deployment's words, squashed and deduplicated. */
export function deploymentWords(config: Pick<Config, "APP_NAME" | "ISSUER" | "APP_URL" | "PASSWORD_CONTEXT_WORDS">): string[] {
  const words = [...BUILT_IN_CONTEXT_WORDS, config.APP_NAME, ...hostLabels(config.ISSUER), ...hostLabels(config.APP_URL), ...config.PASSWORD_CONTEXT_WORDS].map(
    squash,
  );
  return [...new Set(words.filter((w) => w.length >= MIN_WORD))];
}

/** The account's words: its username, its address and the address's local part. */
export function ownerWords(owner: PasswordOwner): string[] {
  const words: string[] = [];
  if (owner.username) words.push(owner.username);
  if (owner.email) {
    const at = owner.email.lastIndexOf("@");
    words.push(owner.email, at > 0 ? owner.email.slice(0, at) : "");
  }
  return words.map(squash).filter((w) => w.length >= MIN_WORD);
}

/** Whether the password contains one of the account's or the deployment's words. */
export function containsContextWord(config: Parameters<typeof deploymentWords>[0], password: string, owner: PasswordOwner): boolean {
  const squashed = squash(password);
  return [...ownerWords(owner), ...deploymentWords(config)].some((w) => squashed.includes(w));
}
