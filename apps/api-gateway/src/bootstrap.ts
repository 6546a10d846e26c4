import type { Server } from 'node:http';
import { hostname } from 'node:os';

import { type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';

import type { GatewayConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { JSON_MEDIA_TYPES, requireJsonBody, SecretBox } from '@payorch/domain';
import { configureSystemLookups, lookupLimits, type Resolver, systemLookups } from '@payorch/egress-guard';
import { createLogger, createMetricsRegistry, egressLookupMetrics, httpMetrics, type Logger } from '@payorch/logging';
import { redisEventSink, type TerminalCommandDispatcher } from '@payorch/operations';
import { RedisConnections } from '@payorch/redis';

import { AppModule } from './app.module';
import { inputHygiene, MAX_JSON_BODY } from './common/input-hygiene';
import { finalizeDocument, operationIdOf } from './common/openapi';
import { answerClientErrors } from './common/raw-error';
import type { PayorchRequest } from './common/request-context';
import { requestIdMiddleware } from './common/request-id.middleware';
import { routeOf } from './common/request-log';
import { securityHeaders } from './common/security-headers';

export interface GatewayOptions {
  logger?: Logger;
  /** Command bus to the device connectors (tests inject an in-process one). */
  dispatcher?: TerminalCommandDispatcher;
  /** Resolver for tenant-given host names (egress policy); tests inject one so no real name is looked up. */
  resolver?: Resolver;
}

/** Builds the gateway (used by main.ts and by the e2e tests), not yet listening. */
export async function createGatewayApp(config: GatewayConfig, options: GatewayOptions = {}): Promise<INestApplication> {
  const logger = options.logger ?? createLogger({ name: 'api-gateway', level: config.LOG_LEVEL });
  const metrics = createMetricsRegistry('api-gateway');
  const http = httpMetrics(metrics);
  // The process's host name lookups (URL checks, Assist): DNS queries end by EGRESS_DNS_TIMEOUT_MS, bounded in number and shared fairly by tenant (docs/security.md).
  configureSystemLookups(lookupLimits(config.EGRESS_DNS_MAX_IN_FLIGHT, config.EGRESS_DNS_MAX_QUEUED), { timeoutMs: config.EGRESS_DNS_TIMEOUT_MS });
  egressLookupMetrics(metrics, systemLookups);
  const redis = gatewayRedis(config, logger);
  const secrets = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS);
  // Every committed domain event goes to its tenant's live channel (streams, webhook fan-out), an operation's view sealed.
  const db = Database.connect(config.DATABASE_APP_URL, undefined, {
    preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
    onCommitted: redisEventSink(redis.get('command'), config.REDIS_KEY_PREFIX, (err) => logger.warn({ err: err.message }, 'event publish failed'), secrets),
  });

  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ config, db, dispatcher: options.dispatcher, logger, metrics, redis, resolver: options.resolver, secrets }),
    // Only the JSON parser below: no urlencoded parser, so a form body never reaches a handler.
    { logger: false, bodyParser: false },
  );
  // One proxy hop (ours, deploy/nginx): req.ip is then the right-most X-Forwarded-For entry, the address our proxy saw,
  // as `sourceAddress` reads it; `true` made it the left-most one, whatever the client wrote there.
  app.set('trust proxy', config.TRUST_PROXY ? 1 : false);
  // No `X-Powered-By: Express` (it names the framework to whoever probes), and no answer is sniffed into another type
  // than it declares (a JSON error echoing input is never rendered as HTML); the console and /docs add their own policy (console/, DOCS_CSP).
  app.disable('x-powered-by');
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  // The request id comes first, so every answer — parser errors included — carries it. The `request` log
  // line is nestjs-pino's (AppModule: LoggerModule), with this same id; metrics count every answer here.
  app.use(requestIdMiddleware);
  app.use((req: PayorchRequest, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeOf(req);
      http.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      http.duration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  });
  // Input hygiene, before guards, interceptors and pipes: 415 for non-JSON bodies, 400/413 from the
  // parser, then depth / NUL / lone surrogates in body, query and path (docs/security.md).
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: MAX_JSON_BODY, type: JSON_MEDIA_TYPES });
  app.use(inputHygiene);
  answerClientErrors(app.getHttpServer() as Server, logger);
  // Signals are main.ts' (exitGracefullyOnSignals: readiness 503, drain, bounded exit); tests call app.close().

  // The API reference: its page, files, 404s and the document in JSON (and YAML, /docs-yaml) carry its CSP and
  // the pages' security headers (common/security-headers.ts, shared with the console); mounted before the routes.
  app.use(['/docs', '/docs-yaml'], securityHeaders(DOCS_CSP));
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}

/**
 * The CSP of the API reference (`/docs`, Swagger UI 5 as @nestjs/swagger serves it): nothing but what it uses.
 * Its scripts are files (swagger-ui-bundle.js, the standalone preset, swagger-ui-init.js carrying the document), so
 * `script-src 'self'` with no inline script or eval; requests ("Try it out") go to this origin only; its stylesheet
 * draws icons as `data:` SVGs. It has four inline styles, each a constant: the page's two `<style>` blocks
 * (@nestjs/swagger's HTML template), the `style` attribute hiding its SVG icon sprite, and the `<style>` inside
 * the top bar's logo (swagger-ui-dist's standalone preset). They are allowed by their hashes ('unsafe-hashes'
 * for the attribute), not with 'unsafe-inline', so an injected style is refused like an injected script. An
 * upgrade that changes one of them fails test/security/api-docs.security-spec.ts, where Chromium names the new hash.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  [
    "style-src 'self' 'unsafe-hashes'",
    "'sha256-/jDKvbQ8cdux+c5epDIqkjHbXDaIY8RucT1PmAe8FG4='", // <head> <style>: box-sizing, body margin and background
    "'sha256-eaPyLWVdqMc60xuz5bTp2yBRgVpQSoUggte1+40ONPU='", // <body> <style>: hides the top bar's URL field (no `explorer`)
    "'sha256-ezdv1bOGcoOD7FKudKN0Y2Mb763O6qVtM8LT2mtanIU='", // style="position:absolute;width:0;height:0" of the icon sprite
    "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='", // the logo's <style> (its two fill colours)
  ].join(' '),
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The OpenAPI document served at /docs/openapi.json and committed as docs/openapi.json (`npm run docs:openapi`). */
export function buildOpenApiDocument(app: INestApplication) {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('payorch API')
      .setDescription(
        'Payment orchestration for terminal fleets and wallet payments. Authenticate with `Authorization: Bearer <API key>`; send an `Idempotency-Key` on every mutating call. Errors: `{error:{code,message,details,requestId}}` with the codes each operation lists. Every enum value is lower snake_case.',
      )
      .setVersion('1')
      .setLicense('UNLICENSED', 'https://github.com/payorch/payorch')
      .addServer('/', 'The gateway serving this document (locally http://localhost:3000, `npm start`)')
      .build(),
    { operationIdFactory: operationIdOf },
  );
  return finalizeDocument(document);
}

/**
 * The gateway's Redis connections (docs/architecture.md, "Redis connections"): `command` (fail fast: no
 * offline queue) for everything request/reply, BullMQ producers included; `blocking` for the command bus
 * reply reader; `subscriber` for the live event hub.
 */
function gatewayRedis(config: GatewayConfig, logger: Logger): RedisConnections {
  return new RedisConnections({
    url: config.REDIS_URL,
    clientName: `${config.REDIS_KEY_PREFIX}:api-gateway:${hostname()}-${process.pid}`,
    connections: { command: {}, blocking: {}, subscriber: {} },
    onError: (name, err) => logger.warn({ err: err.message, connection: name }, 'redis connection error'),
  });
}
