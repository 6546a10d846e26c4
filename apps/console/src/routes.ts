/** Hash routes of the console (`#/fleet`, `#/terminals/<id>`, …). */
export interface Route {
  page: 'fleet' | 'terminal' | 'operations' | 'pay' | 'settlements' | 'settlement' | 'wallet' | 'webhooks' | 'api-keys' | 'audit' | 'campaigns' | 'plots';
  id?: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [head, id] = path.split('/');
  const params = new URLSearchParams(query);
  switch (head) {
    case 'terminals':
      return id ? { page: 'terminal', id, params } : { page: 'fleet', params };
    case 'operations':
      return { page: 'operations', params };
    case 'pay':
      return { page: 'pay', params };
    case 'settlements':
      return id ? { page: 'settlement', id, params } : { page: 'settlements', params };
    case 'wallet':
    case 'webhooks':
    case 'api-keys':
    case 'audit':
    case 'campaigns':
    case 'plots':
      return { page: head, params };
    default:
      return { page: 'fleet', params };
  }
}
