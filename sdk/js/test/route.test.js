import { test } from 'node:test';
import assert from 'node:assert/strict';
import { templatePath } from '../src/route.js';

const cases = [
  ['/', '/'],
  ['', '/'],
  ['/requests', '/requests'],
  ['/requests/12345/edit', '/requests/:id/edit'],
  ['/requests/7', '/requests/:id'],
  ['/requests/123e4567-e89b-12d3-a456-426614174000', '/requests/:id'],
  ['/files/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b', '/files/:id'],
  ['/tickets/INC0012345', '/tickets/:id'],
  ['/people/ivan.petrov@corp.kz', '/people/:id'],
  ['/search?q=Ivan+Petrov&iin=880101300123', '/search'],
  ['/requests/42#comments', '/requests/:id'],
  ['/a/%D0%98%D0%B2%D0%B0%D0%BD', '/a/:id'],
  ['/v2/reports/monthly', '/v2/reports/monthly'],
  ['/api/v1/requests/', '/api/v1/requests/'],
  ['/x/' + 'a'.repeat(41), '/x/:id'],
];

for (const [path, expected] of cases) {
  test(`templatePath(${JSON.stringify(path)})`, () => assert.equal(templatePath(path), expected));
}

test('templating is idempotent', () => {
  for (const [path] of cases) assert.equal(templatePath(templatePath(path)), templatePath(path));
});
