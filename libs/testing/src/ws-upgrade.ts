import { WebSocket } from 'ws';

/** The answer to a WebSocket upgrade of `url` (ws:// or http://) with these headers: 101, or the refusal's status and Retry-After. */
export function upgradeAnswer(url: string, headers: Record<string, string>): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    ws.on('error', () => undefined);
    ws.once('upgrade', () => {
      resolve({ status: 101 });
      ws.terminate();
    });
    ws.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] });
      ws.terminate();
    });
  });
}
