import { Module } from '@nestjs/common';

import { ConsoleController } from './console.controller';
import { ConsoleFiles, DEFAULT_CONSOLE_DIR } from './console-files';
import { CONSOLE_FILES } from './console.tokens';

/** Serves the ops console's build (dist/console) at /console. */
@Module({
  controllers: [ConsoleController],
  providers: [{ provide: CONSOLE_FILES, useFactory: () => new ConsoleFiles(DEFAULT_CONSOLE_DIR) }],
})
export class ConsoleModule {}
