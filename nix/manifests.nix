# The non-Rust deliverables as packages: the Dapr resources and the Grafana dashboards.
{ pkgs, root }:
let
  inherit (pkgs) lib;
  inherit (lib) fileset;

  daprSrc = fileset.toSource {
    root = root + "/dapr";
    fileset = fileset.unions [
      (root + "/dapr/components")
      (root + "/dapr/config.yaml")
      (root + "/dapr/subscriptions")
    ];
  };

  dashboardsDir = root + "/grafana/dashboards";
in
{
  # `dapr/components/common` plus one broker profile is what daprd's --resources-path needs; the
  # repository keeps them apart so `cargo xtask up|test --broker <profile>` can pick one. Rendered
  # here as:
  #   config.yaml                    the Configuration (daprd --config)
  #   resources/<profile>/*.yaml     common components + that profile's pubsub + the subscriptions
  # one directory per profile found under dapr/components, so a new broker needs no edit here.
  dapr-manifests = pkgs.runCommand "todo-dapr-dapr-manifests" { } ''
    mkdir -p $out/resources
    cp ${daprSrc}/config.yaml $out/config.yaml
    for profile in ${daprSrc}/components/*/; do
      name=$(basename "$profile")
      [ "$name" = common ] && continue
      dest=$out/resources/$name
      mkdir -p "$dest"
      for file in ${daprSrc}/components/common/*.yaml "$profile"*.yaml ${daprSrc}/subscriptions/*.yaml; do
        # daprd reads a flat directory: two files of the same name would silently drop one.
        if [ -e "$dest/$(basename "$file")" ]; then
          echo "dapr-manifests: $(basename "$file") exists twice in profile $name" >&2
          exit 1
        fi
        cp "$file" "$dest/"
      done
    done
    if [ -z "$(ls $out/resources)" ]; then
      echo "dapr-manifests: no broker profile under dapr/components" >&2
      exit 1
    fi
  '';

  # The committed dashboard JSON, for Grafana's file provisioning or the Helm chart's ConfigMap.
  # Until grafana/dashboards/ exists the attribute is still there (CI checks the output names) but
  # building it fails with the reason instead of shipping an empty directory.
  dashboards =
    if builtins.pathExists dashboardsDir then
      pkgs.runCommand "todo-dapr-dashboards"
        {
          src = fileset.toSource {
            root = dashboardsDir;
            fileset = fileset.fileFilter (file: file.hasExt "json") dashboardsDir;
          };
        }
        ''
          cp -r $src $out
        ''
    else
      pkgs.runCommand "todo-dapr-dashboards" { } ''
        echo "grafana/dashboards/ is not in this revision: there are no dashboards to package" >&2
        exit 1
      '';
}
