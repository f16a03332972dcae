// Validates the AsyncAPI and OpenAPI documents of the protocol with the official
// parsers. Usage: node lint.mjs ASYNCAPI.yaml OPENAPI.yaml
// Exit 0 when both are valid, 1 when either has an error or a warning, 2 on usage.
import { Parser, fromFile } from '@asyncapi/parser';
import SwaggerParser from '@apidevtools/swagger-parser';

const severities = ['error', 'warning', 'info', 'hint'];

async function lintAsyncAPI(path) {
  const { document, diagnostics } = await fromFile(new Parser(), path).parse();
  let failed = document === undefined;
  for (const d of diagnostics) {
    const level = severities[d.severity] ?? String(d.severity);
    if (d.severity <= 1) failed = true;
    const where = d.range ? `${d.source ?? path}:${d.range.start.line + 1}` : path;
    console.log(`${where}: ${level}: ${d.message} [${d.code}] at /${d.path.join('/')}`);
  }
  if (!failed) {
    const messages = document.allMessages().length;
    console.log(`${path}: valid AsyncAPI ${document.version()}, ${messages} messages`);
  }
  return !failed;
}

async function lintOpenAPI(path) {
  try {
    const api = await SwaggerParser.validate(path);
    console.log(`${path}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
    return true;
  } catch (err) {
    console.log(`${path}: error: ${err.message}`);
    return false;
  }
}

const [asyncapi, openapi, ...rest] = process.argv.slice(2);
if (!asyncapi || !openapi || rest.length > 0) {
  console.error('usage: node lint.mjs ASYNCAPI.yaml OPENAPI.yaml');
  process.exit(2);
}
const ok = [await lintAsyncAPI(asyncapi), await lintOpenAPI(openapi)].every(Boolean);
process.exit(ok ? 0 : 1);
