import type { NextFunction, Request, Response } from 'express';

/**
 * The headers of the pages a browser renders from the gateway — the ops console (`/console`) and the API
 * reference (`/docs`) — around each one's own CSP. Framing is refused twice (`frame-ancestors` in the CSP,
 * `X-Frame-Options` for browsers without it). COOP: a page that opened one keeps no handle on its window (it
 * cannot navigate it later to a look-alike sign-in page); CORP: no other site loads its files or answers.
 */
export function pageSecurityHeaders(csp: string): Readonly<Record<string, string>> {
  return {
    'Content-Security-Policy': csp,
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
  };
}

/** Express middleware setting pageSecurityHeaders(csp), mounted before guards and routes so a refusal or a 404 carries them too. */
export function securityHeaders(csp: string): (req: Request, res: Response, next: NextFunction) => void {
  const headers = pageSecurityHeaders(csp);
  return (_req, res, next) => {
    res.set(headers);
    next();
  };
}
