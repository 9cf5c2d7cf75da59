// The conformance kit's own wait, shared with the project's tests.
export { waitFor } from '../../src/testing/conformance/wait-for.js';
