declare module 'virtual:spec-validator' {
  import type { ErrorObject } from 'ajv';
  const validate: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
  export default validate;
}
