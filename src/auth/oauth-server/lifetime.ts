import type { Config } from "../../config";

/**
 * For how long an approval gives an app access, as the consent page says it (ASVS 10.7.2). Each
 * access token lives ACCESS_TOKEN_TTL. Without a refresh token (no refresh_token grant, or an OpenID
 * request without offline_access: auth/oauth-server/token.ts refreshAllowed) access ends with it.
 * With one, the grant lives as a session does: at most REFRESH_TOKEN_TTL, ended sooner when unused
 * for REFRESH_IDLE_TTL, and whenever the user disconnects the app.
 */
export interface GrantLifetime {
  access_token_seconds: number;
  refresh: { max_seconds: number; idle_seconds: number } | null;
  description: string;
}

export function grantLifetime(config: Config, renewable: boolean): GrantLifetime {
  const access = config.ACCESS_TOKEN_TTL;
  if (!renewable)
    return {
      access_token_seconds: access,
      refresh: null,
      description: `For ${inWords(access)}; after that the app must ask you again.`,
    };
  const [max, idle] = [config.REFRESH_TOKEN_TTL, config.REFRESH_IDLE_TTL];
  return {
    access_token_seconds: access,
    refresh: { max_seconds: max, idle_seconds: idle },
    description: `Until you disconnect the app, for at most ${inWords(max)}; it ends sooner if the app goes ${inWords(idle)} without using it.`,
  };
}

/** A duration in the largest whole unit that fits ("15 minutes", "30 days", "1 hour"). */
export function inWords(seconds: number): string {
  const units: [string, number][] = [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size && seconds % size === 0) return plural(seconds / size, unit);
  }
  for (const [unit, size] of units) if (seconds >= size) return `about ${plural(Math.round(seconds / size), unit)}`;
  return plural(seconds, "second");
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
