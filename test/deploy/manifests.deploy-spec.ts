import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import fc from 'fast-check';
import * as YAML from 'yaml';

import { loadConfig, schemasByApp } from '@payorch/config';
import { parseCidr } from '@payorch/egress-guard';
import { ServiceHealthController } from '@payorch/health';
import { REPO_ROOT } from '@payorch/testing';

import { AGENT_PATH } from '../../apps/device-connector/src/tunnel/agent-tunnel.server';
import {
  APPS,
  type AppName,
  appOfCommand,
  containersOf,
  DEPLOY,
  directives,
  effectiveInstructions,
  hasKubectl,
  interpolate,
  type K8sObject,
  kubectlKustomize,
  loadCompose,
  loadDockerfile,
  loadNginx,
  miniKustomize,
  type NginxDirective,
  overlays,
  podSpecOf,
  requiredKeys,
  SAMPLE_ENV,
} from './support/deploy-files';

/**
 * Issue 18: deploy/ kept true without a container runtime. Compose and every rendered Kubernetes overlay are
 * parsed with the `yaml` package and checked against the code: each app's required config variables (from
 * its zod schema), the health endpoints the apps serve, the agents' WebSocket path, pinned images, non-root
 * containers, resources, PodDisruptionBudgets, autoscalers, and every service's NetworkPolicy mirroring
 * EGRESS_ALLOW_CIDRS and the operator grants of the channels it dials. The Dockerfile gets lint-like checks.
 */

/** The port variable and the default port of each app (schema defaults of its *_PORT variable). */
const PORT_VARIABLE: Record<AppName, string> = {
  'api-gateway': 'GATEWAY_PORT',
  'device-connector': 'CONNECTOR_PORT',
  'settlement-worker': 'WORKER_HEALTH_PORT',
};

/** The health routes ServiceHealthController (every app's HealthController) really serves. */
function servedRoute(method: 'live' | 'ready'): string {
  return `/${Reflect.getMetadata('path', ServiceHealthController.prototype[method]) as string}`;
}

const SECRET_NAME = /(KEYS?|SECRET|PASSWORD|TOKEN|CREDENTIALS?)$/i;

describe('deploy/compose.yaml', () => {
  const { services, raw } = loadCompose(SAMPLE_ENV);
  const appServices = Object.entries(services).filter(([, s]) => appOfCommand(s.command) !== null);

  it('runs two instances of each app, each connector with its own instance id', () => {
    const count = (app: AppName) => appServices.filter(([, s]) => appOfCommand(s.command) === app).length;
    expect(APPS.map(count)).toEqual([2, 2, 2]);
    const ids = appServices.filter(([, s]) => appOfCommand(s.command) === 'device-connector').map(([, s]) => s.environment?.CONNECTOR_INSTANCE_ID);
    expect(new Set(ids).size).toBe(2);
  });

  it.each(APPS)('gives every %s instance each required variable of its config schema, and the whole environment parses', (app) => {
    expect(requiredKeys(app).length).toBeGreaterThan(0);
    for (const [name, service] of appServices.filter(([, s]) => appOfCommand(s.command) === app)) {
      const env = service.environment ?? {};
      expect({ name, missing: requiredKeys(app).filter((key) => !env[key]) }).toEqual({ name, missing: [] });
      const config = loadConfig(app, schemasByApp[app], env) as Record<string, unknown>;
      // Reachable from the proxy and the healthcheck: listening on every interface, on the port the healthcheck asks.
      const host = Object.entries(config).find(([key]) => key.endsWith('_HOST'))?.[1];
      expect([name, host]).toEqual([name, '0.0.0.0']);
      expect(service.healthcheck?.test).toEqual(['CMD', 'node', 'healthcheck.mjs', PORT_VARIABLE[app], String(config[PORT_VARIABLE[app]])]);
    }
  });

  it('refuses to start without the secrets instead of running with blanks, and holds no secret value itself', () => {
    expect(() => loadCompose({ ...SAMPLE_ENV, PAYORCH_MASTER_KEY: '' })).toThrow(/PAYORCH_MASTER_KEY/);
    expect(() => loadCompose({ ...SAMPLE_ENV, DATABASE_APP_PASSWORD: undefined })).toThrow(/DATABASE_APP_PASSWORD/);
    for (const line of raw.split('\n')) {
      const match = /^\s*([A-Z_]+):\s*(.+)$/.exec(line);
      if (match && SECRET_NAME.test(match[1]!)) expect([match[1], match[2]]).toEqual([match[1], expect.stringMatching(/^\$\{[A-Z_]+[:?-]/)]);
    }
  });

  it('pins every image to a version (never latest, never untagged)', () => {
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$/)]);
    }
  });

  it('the healthcheck script asks the readiness endpoint the apps serve', () => {
    expect(servedRoute('ready')).toBe('/health/ready');
    expect(readFileSync(path.join(DEPLOY, 'docker/healthcheck.mjs'), 'utf8')).toContain(`${servedRoute('ready')}\``);
  });

  it('starts the apps only after the migration finished, the migration after PostgreSQL is healthy', () => {
    for (const [name, service] of appServices) expect([name, service.depends_on?.migrate]).toEqual([name, { condition: 'service_completed_successfully' }]);
    expect(services.migrate!.command).toEqual(['node', 'deploy/migrate/migrate.mjs']);
    expect(services.migrate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(Object.keys(services.migrate!.environment ?? {}).sort()).toEqual(['DATABASE_APP_PASSWORD', 'DATABASE_URL']);
    // The apps log in as payorch_app with the password the migration gave it.
    const appUrl = new URL(services['gateway-1']!.environment!.DATABASE_APP_URL!);
    expect([appUrl.username, appUrl.password]).toEqual(['payorch_app', SAMPLE_ENV.DATABASE_APP_PASSWORD]);
  });

  it("proxies every gateway and connector instance, with WebSocket upgrade on the agents' path and the events socket", () => {
    const nginx = readFileSync(path.join(DEPLOY, 'nginx/nginx.conf'), 'utf8');
    const upstream = (name: string) => [...nginx.matchAll(/upstream (\w+) \{([^}]*)\}/g)].find((m) => m[1] === name)?.[2] ?? '';
    const servers = (name: string) => [...upstream(name).matchAll(/server ([\w-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`).sort();
    const instances = (app: AppName) =>
      appServices
        .filter(([, s]) => appOfCommand(s.command) === app)
        .map(([name, s]) => `${name}:${s.environment?.[PORT_VARIABLE[app]]}`)
        .sort();
    expect(servers('gateways')).toEqual(instances('api-gateway'));
    expect(servers('connectors')).toEqual(instances('device-connector'));
    const location = (where: string) => new RegExp(`location = ${where.replace(/\//g, '\\/')} \\{([^}]*)\\}`).exec(nginx)?.[1] ?? '';
    for (const where of [AGENT_PATH, '/v1/events/ws']) {
      expect(location(where)).toContain('proxy_set_header Upgrade $http_upgrade;');
      expect(location(where)).toContain('proxy_set_header Connection $connection_upgrade;');
    }
    expect(location(AGENT_PATH)).toContain('proxy_pass http://connectors;');
    expect(location(`${AGENT_PATH}/enroll`)).toContain('proxy_pass http://connectors;');
  });
});

/**
 * The budgets of the agents' endpoint (docs/security.md, "Agent enrollment and upgrades"): each enrollment or upgrade
 * costs a connector a database lookup, whoever sends it. Per client address, at the proxy: the connector sees only the
 * proxy's address, and a budget there would have been one for every agent.
 */
const AGENT_BUDGETS = {
  [AGENT_PATH]: { ratePerSecond: 50, burst: 500 },
  [`${AGENT_PATH}/enroll`]: { ratePerSecond: 1, burst: 10 },
};

describe('deploy/nginx/nginx.conf', () => {
  const [http] = directives(loadNginx(), 'http');
  const servers = directives(http!.block, 'server');
  const locationOf = (server: NginxDirective, where: string) => directives(server.block, 'location').find((l) => l.args.join(' ') === where);
  const agents = servers.find((s) => locationOf(s, `= ${AGENT_PATH}`))!;
  /** `limit_req_zone <key> zone=<name>:<size> rate=<n>r/s|r/m`, by zone name. */
  const zones = new Map(
    directives(http!.block, 'limit_req_zone').map(({ args }) => {
      const [key, ...options] = args;
      const option = (name: string) => options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1) ?? '';
      const [, count, unit] = /^(\d+)r\/([sm])$/.exec(option('rate')) ?? [];
      return [option('zone').split(':')[0]!, { key, ratePerSecond: Number(count) / (unit === 'm' ? 60 : 1) }];
    }),
  );

  it.each(Object.entries(AGENT_BUDGETS))("bounds %s per client address: its own zone, keyed by the peer's address, burst without queueing", (where, budget) => {
    const location = locationOf(agents, `= ${where}`);
    const [limit, ...more] = directives(location?.block, 'limit_req');
    expect(more).toEqual([]);
    const options = Object.fromEntries((limit?.args ?? []).map((a) => [a.split('=')[0], a.split('=')[1] ?? true]));
    const zone = zones.get(String(options.zone));
    // The peer's address (an IPv6 one by its /64, below): not a header a client writes itself (X-Forwarded-For), nor one
    // key that every client shares.
    expect({ key: zone?.key, ratePerSecond: zone?.ratePerSecond, burst: Number(options.burst), nodelay: options.nodelay }).toEqual({
      key: '$agent_client',
      ...budget,
      nodelay: true,
    });
    // Each path spends its own budget: an upgrade storm never holds back an enrollment.
    const others = Object.keys(AGENT_BUDGETS).filter((w) => w !== where);
    for (const other of others) expect(directives(locationOf(agents, `= ${other}`)?.block, 'limit_req')[0]?.args[0]).not.toBe(`zone=${options.zone}`);
  });

  describe("the budgets' client key ($agent_client)", () => {
    const [map] = directives(http!.block, 'map').filter((m) => m.args[1] === '$agent_client');
    /** What nginx's map gives for `remote` ($remote_addr): its first matching regex's value, else the default. */
    const keyOf = (remote: string): string => {
      expect(map?.args[0]).toBe('$remote_addr');
      for (const entry of map!.block!) {
        if (!entry.name.startsWith('~')) continue;
        const match = new RegExp(entry.name.slice(1)).exec(remote);
        if (match) return entry.args[0]!.replace(/\$(\w+)/g, (_, name: string) => match.groups?.[name] ?? `<no capture ${name}>`);
      }
      const fallback = map!.block!.find((e) => e.name === 'default')!.args[0]!;
      return fallback === '$binary_remote_addr' ? `address ${remote}` : `<default ${fallback}>`;
    };
    /** An IPv6 address of 8 groups as nginx prints it (RFC 5952; WHATWG URL serialises it the same way). */
    const printed = (groups: number[]) => new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
    /** The 8 groups of a printed IPv6 address. */
    const expanded = (text: string): number[] => {
      const [head, tail] = text.split('::').map((part) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []));
      return tail === undefined ? head! : [...head!, ...new Array<number>(8 - head!.length - tail.length).fill(0), ...tail];
    };
    const slash64 = (groups: number[]) =>
      `v6/${groups
        .slice(0, 4)
        .map((g) => g.toString(16))
        .join(':')}`;
    // Groups biased to zero, so that "::" lands at every place it can take.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 0xffff }));
    const address = fc.array(group, { minLength: 8, maxLength: 8 });

    it('is the /64 of any IPv6 address, whatever shape its printed form has', () => {
      fc.assert(
        fc.property(address, (groups) => {
          expect({ remote: printed(groups), key: keyOf(printed(groups)) }).toEqual({ remote: printed(groups), key: slash64(groups) });
        }),
        { numRuns: 5_000 },
      );
      // Every place "::" can take, once each (each shape is how nginx prints its address).
      const shapes = [
        '1:2:3:4:5:6:7:8',
        '1:2:3:4::',
        '1:2:3::',
        '1:2::',
        '1::',
        '::',
        '::1',
        '1:2:3::4:5:6',
        '1::2:3:4:5:6',
        '::1:2:3:4:5',
        '::1:2:3:4:5:6',
        '1:2:3:4:5::6',
      ];
      expect(shapes.map((shape) => printed(expanded(shape)))).toEqual(shapes);
      expect(shapes.map(keyOf)).toEqual(shapes.map((shape) => slash64(expanded(shape))));
    });

    it('addresses of one /64 share a budget, of two /64s never', () => {
      fc.assert(
        fc.property(address, address, (a, b) => {
          const sameNet = slash64(a) === slash64(b);
          expect(keyOf(printed(a)) === keyOf(printed(b))).toBe(sameNet);
          const neighbour = [...a.slice(0, 4), ...b.slice(4)];
          expect(keyOf(printed(neighbour))).toBe(keyOf(printed(a)));
        }),
        { numRuns: 2_000 },
      );
    });

    it('is the address itself for IPv4 (and IPv4-mapped IPv6)', () => {
      expect(['203.0.113.7', '10.0.0.1', '::ffff:203.0.113.7'].map(keyOf)).toEqual(['address 203.0.113.7', 'address 10.0.0.1', 'address ::ffff:203.0.113.7']);
    });
  });

  it('answers a request over budget 429 in the error envelope, with Retry-After', () => {
    expect(directives(agents.block, 'limit_req_status').map((d) => d.args)).toEqual([['429']]);
    const [errorPage] = directives(agents.block, 'error_page');
    expect(errorPage?.args.slice(0, -1)).toEqual(['429']);
    const named = locationOf(agents, errorPage!.args.at(-1)!)!;
    expect(directives(named.block, 'default_type').map((d) => d.args)).toEqual([['application/json']]);
    expect(directives(named.block, 'add_header').map((d) => d.args)).toEqual([
      ['Retry-After', '1', 'always'],
      ['X-Request-Id', '$request_id', 'always'],
    ]);
    const [status, text] = directives(named.block, 'return')[0]!.args as [string, string];
    expect(status).toBe('429');
    // $request_id: 32 hex digits (nginx), the id X-Request-Id carries.
    expect(JSON.parse(text.replace('$request_id', '0123456789abcdef0123456789abcdef'))).toEqual({
      error: { code: 'RATE_LIMITED', message: expect.any(String), details: { retryAfterSeconds: 1 }, requestId: '0123456789abcdef0123456789abcdef' },
    });
  });

  it("limits nothing of the API's server (the gateway keeps its own budgets per key and tenant)", () => {
    const api = servers.filter((s) => s !== agents);
    expect(api).toHaveLength(1);
    const limited = (ds: NginxDirective[] | undefined): boolean => (ds ?? []).some((d) => d.name.startsWith('limit_req') || limited(d.block));
    expect(limited(api[0]!.block)).toBe(false);
  });
});

describe('deploy/k8s/ingress-nginx/controller-configmap.yaml', () => {
  // The controller's ConfigMap is the cluster's (not in the base): this file holds the keys payorch's Ingresses rely on.
  const file = path.join(DEPLOY, 'k8s/ingress-nginx/controller-configmap.yaml');
  const configMap = YAML.parse(readFileSync(file, 'utf8')) as K8sObject & { data: Record<string, string> };

  it("answers over-budget agent requests 429 as deploy/nginx does, and charges the TCP peer's address, never a forwarded header", () => {
    const [limitReqStatus] = directives(directives(loadNginx(), 'http')[0]!.block, 'server').flatMap((s) => directives(s.block, 'limit_req_status'));
    expect(configMap).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ingress-nginx-controller', namespace: 'ingress-nginx' } });
    expect(configMap.data).toEqual({
      'limit-req-status-code': limitReqStatus!.args[0],
      'limit-conn-status-code': '429',
      'use-forwarded-headers': 'false',
    });
    // Every data value is a string (a ConfigMap refuses numbers and booleans).
    expect(Object.values(configMap.data).every((v) => typeof v === 'string')).toBe(true);
  });

  it('is named where the budgets are set and in the deploy guide', () => {
    expect(readFileSync(path.join(DEPLOY, 'k8s/base/ingress.yaml'), 'utf8')).toContain('deploy/k8s/ingress-nginx/controller-configmap.yaml');
    expect(readFileSync(path.join(DEPLOY, 'README.md'), 'utf8')).toContain('(k8s/ingress-nginx/controller-configmap.yaml)');
  });
});

describe('deploy/docker/Dockerfile', () => {
  const { args, stages } = loadDockerfile();
  const targets = APPS.map((app) => ({ app, instructions: effectiveInstructions(stages, app) }));

  it('pins the base image by exact version and installs production dependencies only in the runtime', () => {
    expect(args.NODE_IMAGE).toMatch(/^node:\d+\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    for (const stage of stages) expect([stage.name, stage.from]).toEqual([stage.name, expect.stringMatching(/^(\$\{NODE_IMAGE\}|build|prod-deps|runtime)$/)]);
    const runtime = effectiveInstructions(stages, 'runtime');
    expect(runtime.filter((i) => i.op === 'COPY' && i.args.includes('--from=')).map((i) => i.args)).toEqual([
      '--from=prod-deps /app/node_modules ./node_modules',
    ]);
    expect(stages.find((s) => s.name === 'prod-deps')!.instructions.find((i) => i.op === 'RUN')!.args).toMatch(/^npm ci --omit=dev\b/);
  });

  it.each(APPS)('%s: runs its bundle as a non-root user, with a HEALTHCHECK on readiness, no secret in ENV', (app) => {
    const { instructions } = targets.find((t) => t.app === app)!;
    const users = instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.at(-1)).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    const env = Object.fromEntries(
      instructions
        .filter((i) => i.op === 'ENV')
        .flatMap((i) => i.args.split(/\s+/))
        .map((pair) => pair.split('=') as [string, string]),
    );
    expect(Object.keys(env).filter((name) => SECRET_NAME.test(name) || /URL$/.test(name))).toEqual([]);
    const healthcheck = instructions.filter((i) => i.op === 'HEALTHCHECK').at(-1)?.args ?? '';
    const port = env[PORT_VARIABLE[app]];
    expect(healthcheck).toContain(`CMD ["node", "healthcheck.mjs", "${PORT_VARIABLE[app]}", "${port}"]`);
    expect(instructions.filter((i) => i.op === 'EXPOSE').map((i) => i.args)).toContain(port);
    const cmd = JSON.parse(instructions.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];
    expect(appOfCommand(cmd)).toBe(app);
    // Compose runs the same command as the image.
    const { services } = loadCompose(SAMPLE_ENV);
    expect(
      Object.values(services)
        .filter((s) => appOfCommand(s.command) === app)
        .map((s) => s.command),
    ).toEqual([cmd, cmd]);
  });

  it('ships the ops console in the gateway image, built in the build stage (served at /console)', () => {
    const build = stages.find((s) => s.name === 'build')!;
    expect(
      build.instructions
        .filter((i) => i.op === 'RUN')
        .map((i) => i.args)
        .join('\n'),
    ).toContain('vite build -c apps/console/vite.config.mjs');
    const gateway = targets.find((t) => t.app === 'api-gateway')!.instructions;
    expect(gateway.filter((i) => i.op === 'COPY').map((i) => i.args)).toContain('--from=build /src/dist/console ./dist/console');
  });

  it('keeps the build context small and free of local secrets (.dockerignore)', () => {
    const ignored = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env', '.data', '.git', 'generated']));
  });
});

describe.each(overlays())('deploy/k8s/overlays/%s', (overlay) => {
  const dir = path.join(DEPLOY, 'k8s/overlays', overlay);
  const objects: K8sObject[] = hasKubectl() ? kubectlKustomize(dir) : miniKustomize(dir);
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const configMap = of('ConfigMap').find((o) => o.metadata.name === 'payorch-config')!;
  const deployments = of('Deployment');

  it('renders the same with the test renderer as with kubectl kustomize (when kubectl exists)', () => {
    const mini = miniKustomize(dir);
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    const sorted = (list: K8sObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    expect(mini.map(key).sort()).toEqual(
      ['ConfigMap/payorch-config', 'Ingress/payorch', 'Ingress/payorch-agents', 'Ingress/payorch-enrollment', 'Job/payorch-migrate']
        .concat(
          APPS.map((a) => `Deployment/${a}`),
          APPS.map((a) => `NetworkPolicy/${a}`),
          APPS.map((a) => `PodDisruptionBudget/${a}`),
          ['api-gateway', 'settlement-worker'].map((a) => `HorizontalPodAutoscaler/${a}`),
        )
        .concat(['api-gateway', 'device-connector'].map((a) => `Service/${a}`))
        .sort(),
    );
    if (hasKubectl()) expect(sorted(mini)).toEqual(sorted(kubectlKustomize(dir)));
  });

  it.each(APPS)('%s: gets every required config variable from its env, the ConfigMap or the Secret', (app) => {
    const deployment = deployments.find((d) => d.metadata.name === app)!;
    const [container] = containersOf(deployment);
    expect(appOfCommand(container!.command)).toBe(app);
    const fromConfigMap = container!.envFrom?.some((e) => e.configMapRef?.name === configMap.metadata.name) ? Object.keys(configMap.data ?? {}) : [];
    const provided = new Set([...(container!.env ?? []).map((e) => e.name), ...fromConfigMap]);
    expect(requiredKeys(app).filter((key) => !provided.has(key))).toEqual([]);
    // Secrets only by reference, never as values in a manifest.
    for (const e of container!.env ?? []) if (SECRET_NAME.test(e.name) || e.name.endsWith('_URL')) expect([e.name, e.value]).toEqual([e.name, undefined]);
    // The plain values and the ConfigMap parse with the app's schema (secrets replaced by samples).
    const env: Record<string, string> = { ...configMap.data };
    for (const e of container!.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    loadConfig(app, schemasByApp[app], {
      ...env,
      DATABASE_APP_URL: 'postgresql://payorch_app:x@db/payorch',
      PAYORCH_MASTER_KEY: SAMPLE_ENV.PAYORCH_MASTER_KEY,
    });
  });

  it.each(APPS)('%s: probes the endpoints the app serves, on the port it listens on', (app) => {
    const [container] = containersOf(deployments.find((d) => d.metadata.name === app)!);
    const port = (p: string | number | undefined) => (typeof p === 'number' ? p : container!.ports?.find((x) => x.name === p)?.containerPort);
    const listens = Number(container!.env?.find((e) => e.name === PORT_VARIABLE[app])?.value);
    expect(container!.livenessProbe?.httpGet?.path).toBe(servedRoute('live'));
    expect(container!.readinessProbe?.httpGet?.path).toBe(servedRoute('ready'));
    expect(container!.startupProbe?.httpGet?.path).toBe(servedRoute('live'));
    for (const probe of [container!.livenessProbe, container!.readinessProbe, container!.startupProbe]) expect(port(probe?.httpGet?.port)).toBe(listens);
  });

  it('runs every container non-root with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    const workloads = objects.filter((o) => podSpecOf(o));
    expect(workloads.length).toBe(4);
    for (const workload of workloads) {
      const pod = podSpecOf(workload)!;
      expect([workload.metadata.name, pod.securityContext?.runAsNonRoot, pod.securityContext?.runAsUser]).toEqual([
        workload.metadata.name,
        true,
        expect.any(Number),
      ]);
      expect(pod.securityContext!.runAsUser).toBeGreaterThan(0);
      for (const c of pod.containers) {
        expect([c.name, c.securityContext]).toEqual([
          c.name,
          expect.objectContaining({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }),
        ]);
      }
    }
  });

  it('pins every image to a version and sets requests and a memory limit on every container', () => {
    for (const workload of objects.filter((o) => podSpecOf(o))) {
      for (const c of containersOf(workload)) {
        expect([c.name, c.image]).toEqual([c.name, expect.stringMatching(/:\d+\.\d+\.\d+$/)]);
        expect([c.name, c.resources?.requests?.cpu, c.resources?.requests?.memory, c.resources?.limits?.memory]).toEqual([
          c.name,
          expect.any(String),
          expect.any(String),
          expect.any(String),
        ]);
      }
    }
  });

  it('covers every Deployment with a PodDisruptionBudget, and the gateway and the worker with an autoscaler', () => {
    const selects = (selector: { matchLabels: Record<string, string> }, d: K8sObject) =>
      Object.entries(selector.matchLabels).every(([k, v]) => d.spec.template.metadata.labels[k] === v);
    for (const d of deployments)
      expect([d.metadata.name, of('PodDisruptionBudget').filter((p) => selects(p.spec.selector, d)).length]).toEqual([d.metadata.name, 1]);
    const scaled = of('HorizontalPodAutoscaler').map((h) => h.spec.scaleTargetRef.name as string);
    expect(scaled.sort()).toEqual(['api-gateway', 'settlement-worker']);
    for (const h of of('HorizontalPodAutoscaler')) expect(h.spec.minReplicas).toBeGreaterThanOrEqual(1);
  });

  /** Each Ingress with the paths it routes (`<path> → <service>`). */
  const routes = () =>
    of('Ingress').map((ingress) => ({
      ingress,
      paths: (ingress.spec.rules as Array<{ http: { paths: Array<{ path: string; backend: { service: { name: string } } }> } }>).flatMap((r) =>
        r.http.paths.map((p) => `${p.path} → ${p.backend.service.name}`),
      ),
    }));
  const ingressOf = (path: string) => routes().find((r) => r.paths.some((p) => p.startsWith(`${path} → `)))!.ingress;
  const annotation = (ingress: K8sObject, name: string) => ingress.metadata.annotations?.[`nginx.ingress.kubernetes.io/${name}`];

  it("routes the agents' WebSocket path and the enrollment to the connector, everything else to the gateway", () => {
    const paths = routes().flatMap((r) => r.paths);
    expect(paths.sort()).toEqual(['/ → api-gateway', `${AGENT_PATH} → device-connector`, `${AGENT_PATH}/enroll → device-connector`].sort());
    // Event streams and agent tunnels stay open.
    for (const path of ['/', AGENT_PATH]) expect(Number(annotation(ingressOf(path), 'proxy-read-timeout'))).toBeGreaterThanOrEqual(3600);
    for (const service of of('Service')) {
      const target = deployments.find((d) => d.metadata.name === service.metadata.name)!;
      expect(containersOf(target)[0]!.ports!.map((p) => p.name)).toContain(service.spec.ports[0].targetPort);
    }
  });

  it.each(Object.entries(AGENT_BUDGETS))(
    'bounds %s per client address with the budget of deploy/nginx (ingress-nginx limit-rps; burst = rps × multiplier), the API not at all',
    (where, budget) => {
      const ingress = ingressOf(where);
      // One path per Ingress: its annotations are its own budget.
      expect(routes().find((r) => r.ingress === ingress)!.paths).toEqual([`${where} → device-connector`]);
      const rps = Number(annotation(ingress, 'limit-rps'));
      expect({ ratePerSecond: rps, burst: rps * Number(annotation(ingress, 'limit-burst-multiplier')) }).toEqual(budget);
      expect(Object.keys(ingressOf('/').metadata.annotations ?? {}).filter((name) => /\/limit-/.test(name))).toEqual([]);
    },
  );

  it.each(APPS)(
    '%s: its NetworkPolicy lets it reach DNS, PostgreSQL, Redis, public addresses and exactly EGRESS_ALLOW_CIDRS plus the ranges granted for its channels',
    (app) => {
      const policies = of('NetworkPolicy').filter((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/name'] === app);
      expect(policies).toHaveLength(1);
      const [policy] = policies;
      expect(policy!.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      // Ingress only to the port the app listens on.
      const [container] = containersOf(deployments.find((d) => d.metadata.name === app)!);
      const listens = Number(container!.env?.find((e) => e.name === PORT_VARIABLE[app])?.value);
      type Rule = { to: Array<{ ipBlock?: { cidr: string; except?: string[] } }>; ports?: Array<{ port: number }> };
      expect((policy!.spec.ingress as Array<{ ports: Array<{ port: number }> }>).flatMap((r) => r.ports.map((p) => p.port))).toEqual([listens]);
      const egress = policy!.spec.egress as Rule[];
      expect(
        egress
          .filter((r) => r.ports)
          .flatMap((r) => r.ports!.map((p) => p.port))
          .sort((a, b) => a - b),
      ).toEqual([53, 53, 5432, 6379]);
      const allowlisted = egress.filter((r) => !r.ports).flatMap((r) => r.to.filter((t) => t.ipBlock && !t.ipBlock.except).map((t) => t.ipBlock!.cidr));
      const split = (list: string | undefined) => (list ?? '').split(/[\s,]+/).filter(Boolean);
      // EGRESS_ALLOW_CIDRS is open to every tenant and channel: every service has it. A grant is one tenant's, for
      // one channel: the service dialling that channel lists it (annotation), no other.
      const granted = split(policy!.metadata.annotations?.['payorch.io/egress-grant-cidrs']);
      for (const cidr of granted) expect([cidr, parseCidr(cidr)?.text]).toEqual([cidr, cidr]);
      expect(allowlisted.sort()).toEqual([...split(configMap.data?.EGRESS_ALLOW_CIDRS), ...granted].sort());
      const publicRule = egress.find((r) => !r.ports && r.to.some((t) => t.ipBlock?.cidr === '0.0.0.0/0'))!;
      expect(publicRule.to.find((t) => t.ipBlock?.cidr === '0.0.0.0/0')!.ipBlock!.except).toEqual(
        expect.arrayContaining(['10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16']),
      );
      expect(publicRule.to.find((t) => t.ipBlock?.cidr === '::/0')!.ipBlock!.except).toEqual(expect.arrayContaining(['::1/128', 'fc00::/7', 'fe80::/10']));
    },
  );

  it('runs the same migration command as Compose, with the owner URL and the app password from the Secret', () => {
    const [job] = of('Job');
    const [container] = containersOf(job!);
    expect(container!.command).toEqual(loadCompose(SAMPLE_ENV).services.migrate!.command);
    expect(container!.env!.map((e) => [e.name, e.valueFrom?.secretKeyRef?.name])).toEqual([
      ['DATABASE_URL', 'payorch-secrets'],
      ['DATABASE_APP_PASSWORD', 'payorch-secrets'],
    ]);
  });
});

describe('configuration comes from the environment only through libs/config', () => {
  /** Files of apps/ and libs/ that run in production (tests, test helpers and developer tools excluded). */
  function productionSources(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return ['testing', 'node_modules', 'dev-sim'].includes(name) ? [] : productionSources(full);
      return /\.ts$/.test(name) && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(name) ? [full] : [];
    });
  }

  it('has no process.env outside libs/config in the services (the agent is configured by its own CLI)', () => {
    const readers = ['apps', 'libs']
      .flatMap((d) => productionSources(path.join(REPO_ROOT, d)))
      .map((file) => path.relative(REPO_ROOT, file))
      .filter((file) => !file.startsWith('libs/config/') && !file.startsWith('apps/agent/'))
      .filter((file) => /process\.env\b/.test(readFileSync(path.join(REPO_ROOT, file), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '')));
    expect(readers).toEqual([]);
  });

  it('interpolates Compose variables as Docker Compose does', () => {
    expect(interpolate('${A:-x} ${B-y} ${C}', { A: '', B: '', C: 'c' })).toBe('x  c');
    expect(() => interpolate('${A:?needed}', {})).toThrow('compose: A: needed');
  });
});
