import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';

/**
 * Every line the service logs, at every level, until `restore()`. The testing module's own logger
 * drops everything but errors, so a real console logger takes its place meanwhile.
 */
export function captureLogLines(): { output: string[]; restore: () => void } {
  const output: string[] = [];
  const previous = (Logger as unknown as { staticInstanceRef?: LoggerService }).staticInstanceRef;
  const spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    }),
  );
  Logger.overrideLogger(new ConsoleLogger({ logLevels: ['log', 'error', 'warn', 'debug', 'verbose', 'fatal'] }));
  return {
    output,
    restore: () => {
      Logger.overrideLogger(previous ?? false);
      for (const spy of spies) spy.mockRestore();
    },
  };
}
