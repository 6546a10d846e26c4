import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';

import { ConsoleController } from './console.controller';
import { ConsoleFiles, consoleSecurityHeaders, DEFAULT_CONSOLE_DIR } from './console-files';
import { CONSOLE_FILES } from './console.tokens';

/** Serves the ops console's build (dist/console) at /console, every answer with the console's security headers. */
@Module({
  controllers: [ConsoleController],
  providers: [{ provide: CONSOLE_FILES, useFactory: () => new ConsoleFiles(DEFAULT_CONSOLE_DIR) }],
})
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(consoleSecurityHeaders).forRoutes(ConsoleController);
  }
}
