import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';

import { Public } from '../common/auth.guard';
import type { PayorchRequest } from '../common/request-context';
import { type ConsoleFiles, NOT_BUILT_PAGE } from './console-files';
import { CONSOLE_FILES } from './console.tokens';

/**
 * `/console`: the ops console's static build (apps/console, docs/console.md), and `/console/session`, which
 * tells the signed-in console what its key may do; every answer with the console's CSP and security headers
 * (ConsoleModule). Not part of the API
 * contract, so not in the OpenAPI document.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  constructor(@Inject(CONSOLE_FILES) private readonly files: ConsoleFiles) {}

  /** The key's id, tenant and scopes (any valid key; the console hides what the scopes do not allow). */
  @Get('session')
  session(@Req() req: PayorchRequest) {
    return { keyId: req.apiKey!.id, tenantId: req.tenant!.tenantId, scopes: req.apiKey!.scopes };
  }

  @Get()
  @Public()
  index(@Res() res: Response) {
    this.send(res, '');
  }

  @Get('*path')
  @Public()
  file(@Param('path') path: string | string[], @Res() res: Response) {
    this.send(res, Array.isArray(path) ? path.join('/') : path);
  }

  /** The security headers are set by ConsoleModule's middleware, on every answer of this controller. */
  private send(res: Response, path: string): void {
    const found = this.files.lookup(path);
    switch (found.kind) {
      case 'file':
        res.status(200).set({ 'Content-Type': found.file.contentType, 'Cache-Control': found.file.cacheControl }).send(found.file.body);
        return;
      case 'not_built':
        res.status(404).set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).send(NOT_BUILT_PAGE);
        return;
      case 'not_found':
        res.status(404).set({ 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).send('not found\n');
        return;
    }
  }
}
