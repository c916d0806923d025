# The few nixpkgs `lib` functions todo-dapr's flake calls, written with builtins only. Same
# names, arguments and results as nixpkgs' for the way the flake uses them; anything the flake
# does not use is absent, so a new call fails here until it is added.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    filter
    isAttrs
    isPath
    listToAttrs
    pathExists
    readDir
    replaceStrings
    stringLength
    substring
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    let
      n = stringLength s;
      k = stringLength suffix;
    in
    n >= k && substring (n - k) k s == suffix;

  # --- lib.fileset ------------------------------------------------------------------------------
  # A file set is a list of { path; pred } elements: the file or directory `path` (absolute, as a
  # string), restricted to the files below it that satisfy `pred` (null: all of them).
  fileSetType = "stub-fileset";

  mkFileset = elems: {
    _type = fileSetType;
    inherit elems;
  };

  # Paths are file sets of themselves, as in nixpkgs; like nixpkgs, a missing path is an error.
  coerce =
    what: value:
    if isAttrs value && (value._type or null) == fileSetType then
      value.elems
    else if isPath value then
      if pathExists value then
        [
          {
            path = toString value;
            pred = null;
          }
        ]
      else
        throw "lib.fileset.${what}: ${toString value} does not exist"
    else
      throw "lib.fileset.${what}: expected a path or a file set";

  fileInfo = path: type: rec {
    name = baseNameOf path;
    inherit type;
    hasExt = ext: hasSuffix ".${ext}" name;
  };

  # Whether `path` (of `type`) is in the set: a listed path or anything below it that passes the
  # element's predicate, or a directory on the way to one.
  keeps =
    elems: path: type:
    builtins.any (
      e:
      path == e.path
      || hasPrefix (path + "/") e.path
      || (
        hasPrefix (e.path + "/") path
        && (type == "directory" || e.pred == null || e.pred (fileInfo path type))
      )
    ) elems;

  # The kept files, relative to root: what the check reads back from `src.stubFiles`.
  listKept =
    elems: dir: rel:
    let
      entries = readDir dir;
    in
    concatLists (
      map (
        name:
        let
          path = "${toString dir}/${name}";
          relPath = if rel == "" then name else "${rel}/${name}";
          type = entries.${name};
        in
        if !(keeps elems path type) then
          [ ]
        else if type == "directory" then
          listKept elems (dir + "/${name}") relPath
        else
          [ relPath ]
      ) (attrNames entries)
    );

  fileset = {
    unions = sets: mkFileset (concatLists (map (coerce "unions") sets));

    maybeMissing = path: if pathExists path then mkFileset (coerce "maybeMissing" path) else mkFileset [ ];

    fileFilter =
      pred: path:
      if !(pathExists path) then
        throw "lib.fileset.fileFilter: ${toString path} does not exist"
      else
        mkFileset [
          {
            path = toString path;
            inherit pred;
          }
        ];

    toSource =
      { root, fileset }:
      let
        rootStr = toString root;
        elems = coerce "toSource" fileset;
        outside = filter (e: !(e.path == rootStr || hasPrefix (rootStr + "/") e.path)) elems;
      in
      if outside != [ ] then
        throw "lib.fileset.toSource: ${(builtins.head outside).path} is not under root ${rootStr}"
      else
        {
          # A real filtered copy, as nixpkgs makes one; coerces to its store path.
          outPath = builtins.path {
            path = root;
            name = "source";
            filter = path: type: keeps elems path type;
          };
          stubFiles = listKept elems root "";
        };
  };
in
{
  inherit fileset hasPrefix hasSuffix;

  importTOML = path: builtins.fromTOML (builtins.readFile path);

  versionAtLeast = v1: v2: builtins.compareVersions v1 v2 >= 0;

  mapAttrs = builtins.mapAttrs;

  filterAttrs =
    pred: set:
    listToAttrs (
      map (name: {
        inherit name;
        value = set.${name};
      }) (filter (name: pred name set.${name}) (attrNames set))
    );

  mapAttrsToList = f: set: map (name: f name set.${name}) (attrNames set);

  genAttrs =
    names: f:
    builtins.listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );

  optionalString = cond: s: if cond then s else "";

  concatStrings = concatStringsSep "";

  escapeShellArgs = args: concatStringsSep " " (map (a: "'${replaceStrings [ "'" ] [ "'\\''" ] a}'") args);

  # Stricter than nixpkgs (which only warns): the flake must set meta.mainProgram.
  getExe =
    drv:
    if drv ? meta.mainProgram then
      "${drv}/bin/${drv.meta.mainProgram}"
    else
      throw "lib.getExe: ${drv.name} has no meta.mainProgram";
}
