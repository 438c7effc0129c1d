/**
 * A readable name for a session's User-Agent ("Chrome on Linux", "Safari on iOS"), for session
 * lists. A guess from well-known tokens, good enough to tell a person's own devices apart; it never
 * proves anything (any client can send any User-Agent).
 */
export declare function deviceName(userAgent: string | null | undefined): string;
