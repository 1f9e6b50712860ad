"""Functions and procedures the read-only Cypher path may call: allow-lists, not deny-lists.

LADYBUG_FUNCTIONS is LadybugDB 0.22's own catalogue (``CALL show_functions() RETURN *`` on a fresh
embedded store), keeping its SCALAR, AGGREGATE and REWRITE functions and dropping every TABLE,
STANDALONE TABLE and COPY function (``read_csv``, ``read_parquet``, ``current_setting``,
``project_graph``, ``copy_csv``, ...: they read files, change or reveal settings), the sequence
functions ``nextval``/``currval`` (``nextval`` writes), ``setseed`` (changes session state),
``error`` and the internal ``constant_or_null``/``internal_id``. None of the kept functions touches a
file, an extension, a setting or the network (extension functions are not in the catalogue of a
store without extensions, and ``LOAD EXTENSION`` is refused). tests/security/test_cypher_guard.py
checks the list against a fresh store's catalogue, so a LadybugDB upgrade that renames or retypes
a function fails a test instead of silently widening the path.

NEO4J_FUNCTIONS are Neo4j 5's built-in read functions the guide and researchers use.
Names compare case-insensitively (both databases do).
"""

from __future__ import annotations

LADYBUG_FUNCTIONS = frozenset(
    """
    abs acos all any array_append array_cat array_concat array_contains array_cosine_similarity
    array_cross_product array_distance array_dot_product array_extract array_has array_indexof
    array_inner_product array_position array_prepend array_push_back array_push_front
    array_slice array_squared_distance array_value asin atan atan2 avg bitshift_left
    bitshift_right bitwise_and bitwise_or bitwise_xor blob cardinality cast cbrt ceil ceiling
    century coalesce collect concat concat_ws contains cos cost cot count count_if count_star
    current_date current_timestamp date date_part date_trunc datepart datetrunc dayname decode
    degrees duration element_at encode end_node ends_with epoch_ms equals even factorial floor
    gamma gen_random_uuid greater_than greater_than_equals greatest hash histogram id ifnull
    initcap interval is_acyclic is_trail keys label labels last_day lcase least left length
    less_than less_than_equals levenshtein lgamma list_any_value list_append list_cat
    list_concat list_contains list_creation list_distinct list_element list_extract list_filter
    list_has list_has_all list_has_any list_indexof list_max list_min list_position list_prepend
    list_product list_reduce list_reverse list_reverse_sort list_slice list_sort list_sum
    list_to_string list_transform list_unique ln log log10 log2 lower lpad ltrim make_date map
    map_extract map_keys map_values max md5 min monthname negate nodes not_equals nullif
    octet_length offset percentilecont percentiledisc pi pow prefix properties radians random
    range regexp_extract regexp_extract_all regexp_full_match regexp_matches regexp_replace
    regexp_split_to_array relationships rels repeat replace reverse right round rowid rpad rtrim
    sha256 sign sin size split_part sqrt start_node starts_with str_split string string_split
    string_to_array struct_extract struct_pack substr substring suffix sum tan time_bucket
    timestamp to_blob to_bool to_date to_days to_double to_epoch_ms to_float to_hours to_int128
    to_int16 to_int32 to_int64 to_int8 to_interval to_microseconds to_milliseconds to_minutes
    to_months to_seconds to_serial to_string to_timestamp to_uint128 to_uint16 to_uint32
    to_uint64 to_uint8 to_uuid to_years tolower toupper trim typeof ucase union_extract
    union_tag union_value upper uuid
    """.split()
)

NEO4J_FUNCTIONS = frozenset(
    """
    abs acos asin atan atan2 avg ceil char_length character_length coalesce collect cos count
    date datetime degrees duration e elementid endnode exp floor haversin head id isempty keys
    labels last left length localdatetime localtime log log10 ltrim max min nodes nullif
    percentilecont percentiledisc pi properties radians rand randomuuid range relationships
    replace reverse right round rtrim sign sin size split sqrt startnode stdev stdevp substring
    sum tail tan time timestamp toboolean tobooleanornull tofloat tofloatornull tointeger
    tointegerornull tolower tostring tostringornull toupper trim type valuetype
    """.split()
)

READ_FUNCTIONS = LADYBUG_FUNCTIONS | NEO4J_FUNCTIONS

# Procedures researchers may CALL: read-only catalogue procedures of LadybugDB and Neo4j.
READ_PROCEDURES = frozenset(
    {
        "show_tables",
        "table_info",
        "show_connection",
        "show_functions",
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.indexes",
        "db.constraints",
    }
)
