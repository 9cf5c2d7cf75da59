/**
 * The PostgreSQL schema this test run writes its tables to. `test/support/global-setup.ts` makes a
 * fresh one per run (`sluice_test_<pid>`) and passes its name to the workers and to the processes
 * the tests spawn through `SLUICE_TEST_SCHEMA`, so two runs on one machine never share or drop each
 * other's tables. A file run outside vitest's global setup falls back to `sluice_test`.
 */
export const TEST_SCHEMA = process.env.SLUICE_TEST_SCHEMA ?? 'sluice_test';
