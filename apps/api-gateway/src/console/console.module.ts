import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';

import { securityHeaders } from '../common/security-headers';
import { ConsoleController } from './console.controller';
import { CONSOLE_CSP, ConsoleFiles, DEFAULT_CONSOLE_DIR } from './console-files';
import { CONSOLE_FILES } from './console.tokens';

/**
 * Serves the ops console's build (dist/console) at /console, every answer (files, 404s, `/console/session` and
 * its refusals) with the console's CSP and the page security headers (common/security-headers.ts).
 */
@Module({
  controllers: [ConsoleController],
  providers: [{ provide: CONSOLE_FILES, useFactory: () => new ConsoleFiles(DEFAULT_CONSOLE_DIR) }],
})
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(securityHeaders(CONSOLE_CSP)).forRoutes(ConsoleController);
  }
}
