# Build an update script from its template (updates/*.in) and the current
# version's SQL sources: a template line "-- @replace NAME" becomes every
# definition of function NAME in the sources (CREATE OR REPLACE, with its
# COMMENT), and a line "-- @create NAME" every definition of the aggregate
# or composite type NAME the version adds (its CREATE statement, through
# the line ");", with its COMMENT), so that an update restates no body and
# no definition: each is written once, in src/sql/.
# Usage: awk -f scripts/build_update.awk TEMPLATE SOURCES... > OUT
FNR == 1 { file++ }
file == 1 { template[++lines] = $0; next }
# the sources: collect each function's definition and comment by name
/^CREATE (FUNCTION|PROCEDURE) customer_analytics\.[a-z_0-9]+\(/ {
    name = $3; sub(/^customer_analytics\./, "", name); sub(/\(.*/, "", name)
    infunc = 1; text = ""
}
infunc {
    line = $0
    if (text == "") sub(/^CREATE /, "CREATE OR REPLACE ", line)
    text = text line "\n"
    if ($0 ~ /\$[a-z_]*\$;$/ || $0 ~ /^    AS 'MODULE_PATHNAME', '[a-z_0-9]+';$/) {
        defs[name] = defs[name] text; infunc = 0
    }
    next
}
# an aggregate's or a composite type's definition, through its ");"
/^CREATE (AGGREGATE|TYPE) customer_analytics\.[a-z_0-9]+[ (]/ {
    name = $3; sub(/^customer_analytics\./, "", name); sub(/\(.*/, "", name)
    inobject = 1
    if (objects[name] != "") objects[name] = objects[name] "\n"
}
inobject {
    objects[name] = objects[name] $0 "\n"
    if ($0 ~ /^\);$/) inobject = 0
    next
}
/^COMMENT ON (AGGREGATE|TYPE) customer_analytics\.[a-z_0-9]+[ (]/ {
    name = $4; sub(/^customer_analytics\./, "", name); sub(/\(.*/, "", name)
    objects[name] = objects[name] "\n" $0 "\n"
}
/^COMMENT ON (FUNCTION|PROCEDURE) customer_analytics\.[a-z_0-9]+\(/ {
    name = $4; sub(/^customer_analytics\./, "", name); sub(/\(.*/, "", name)
    defs[name] = defs[name] $0 "\n"
}
# a name listed on several lines is defined once, at its last line: after
# every function its current body calls (the order SQL-language bodies need)
END {
    for (i = 1; i <= lines; i++)
        if (template[i] ~ /^-- @replace [a-z_0-9]+$/) {
            name = template[i]; sub(/^-- @replace /, "", name)
            last[name] = i
        }
    for (i = 1; i <= lines; i++) {
        if (template[i] ~ /^-- @replace [a-z_0-9]+$/) {
            name = template[i]; sub(/^-- @replace /, "", name)
            if (!(name in defs)) { print "build_update.awk: no function " name " in the sources" > "/dev/stderr"; exit 1 }
            if (last[name] == i)
                printf "%s\n", defs[name]
        } else if (template[i] ~ /^-- @create [a-z_0-9]+$/) {
            name = template[i]; sub(/^-- @create /, "", name)
            if (!(name in objects)) { print "build_update.awk: no aggregate or type " name " in the sources" > "/dev/stderr"; exit 1 }
            printf "%s", objects[name]
        } else
            print template[i]
    }
}
