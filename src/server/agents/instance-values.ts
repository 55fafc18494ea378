// What a node is sent with its instances, and only for them: pull credentials for the registries
// of their images, the values of the secrets they use, the current versions of their configs.
import type { ConfigValueMap, RegistryAuthMap, SecretValueMap } from '../../model/agent-protocol.js';
import type { Instance } from '../../model/types.js';
import { entryImages } from '../../model/spec.js';
import { entrySecrets } from '../../model/spec-secrets.js';
import { entryConfigs } from '../../model/spec-configs.js';

export class InstanceValues {
  constructor(
    /** Pull credentials for the registries of these images (sent with the instances that need them). */
    readonly registryAuth: (images: Iterable<string>) => RegistryAuthMap,
    /** The values of these secrets (sent only to the node whose instances use them). */
    readonly secretValues: (refs: Iterable<string>) => SecretValueMap,
    /** The current versions of these configs (sent like secret values). */
    readonly configValues: (refs: Iterable<string>) => ConfigValueMap,
  ) {}

  /** The registry credentials these instances' images need, if any are stored, and the values of the secrets they use. */
  authFor(instances: Instance[]): { registryAuth?: RegistryAuthMap; secrets?: SecretValueMap; configs?: ConfigValueMap } {
    const images = new Set<string>();
    const secretRefs = new Set<string>();
    const configRefs = new Set<string>();
    for (const instance of instances) {
      if (instance.desired !== 'running') continue;
      for (const image of entryImages(instance.spec)) images.add(image);
      for (const ref of entrySecrets(instance.spec)) secretRefs.add(ref);
      for (const ref of entryConfigs(instance.spec)) configRefs.add(ref);
    }
    const secrets = secretRefs.size > 0 ? this.secretValues(secretRefs) : {};
    const configs = configRefs.size > 0 ? this.configValues(configRefs) : {};
    return { ...this.authForImages(images), ...(Object.keys(secrets).length > 0 ? { secrets } : {}), ...(Object.keys(configs).length > 0 ? { configs } : {}) };
  }

  authForImages(images: Iterable<string>): { registryAuth?: RegistryAuthMap } {
    const registryAuth = this.registryAuth(images);
    return Object.keys(registryAuth).length > 0 ? { registryAuth } : {};
  }
}
