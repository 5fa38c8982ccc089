"""Keras 3 builders for donkeycar's pilot kinds, with donkeycar's own input/output names and shapes.

Each follows the function in donkeycar's ``donkeycar/parts/keras.py`` (autorope/donkeycar,
checked at commit cde8bbe9) layer for layer: the same input and output layer names, shapes,
activations and layer types, with narrower convolutions and dense layers (``WIDTHS``) so the
whole family trains on a laptop CPU in a minute or two.

================  ===========================  ===========================================  ==========================
kind              donkeycar                    inputs                                       outputs
================  ===========================  ===========================================  ==========================
linear            default_n_linear             img_in (120,160,3)                           n_outputs0, n_outputs1 (1)
categorical       default_categorical          img_in (120,160,3)                           angle_out (15) softmax,
                                                                                            throttle_out (20) softmax
imu               default_imu                  img_in, imu_in (6)                           out_0, out_1 (1)
memory            default_memory               img_in, mem_in (6: 3 commands)               n_outputs0 tanh, n_outputs1
                                                                                            sigmoid (1)
behavior          default_bhv                  img_in, xbehavior_in (2)                     angle_out (15), throttle_out
                                                                                            (20) softmax
lstm              rnn_lstm                     img_in (3,120,160,3)                         model_outputs (2)
3dcnn             build_3d_cnn                 img_in (3,120,160,3)                         outputs (2)
gray              default_n_linear, depth 1    img_in (120,160,1)                           n_outputs0, n_outputs1 (1)
dynamic           (none: fully convolutional)  img_in (None,None,3), global average pooling n_outputs0, n_outputs1 (1)
================  ===========================  ===========================================  ==========================

donkeycar calls the behaviour input ``xbehavior_in`` (the x keeps it after ``img_in`` in
TensorRT's alphabetical input order), not ``behavior_in``.

Keras is imported inside the functions, as in :mod:`converter.demo.model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

IMAGE_SHAPE = (120, 160, 3)
SEQ_LENGTH = 3  # donkeycar cfg SEQUENCE_LENGTH
MEM_LENGTH = 3  # donkeycar KerasMemory mem_length
N_IMU = 6
N_BEHAVIORS = 2
ANGLE_BINS = 15
THROTTLE_BINS = 20
# donkeycar's core_cnn_layers filters are (24, 32, 64, 64, 64) and dense (100, 50); these keep the
# structure at about a quarter of the width.
WIDTHS = (8, 12, 16, 16, 16)
DENSE = (64, 32)
DROP = 0.1  # donkeycar uses 0.2; less keeps the short training effective (no effect at inference)


def _layers() -> Any:
    from keras import layers

    return layers


def core_cnn_layers(img_in: Any, l4_stride: int = 1) -> Any:
    """donkeycar's core_cnn_layers: five valid convolutions ``conv2d_1..5`` with dropout, then
    ``flattened``."""
    layers = _layers()
    x = img_in
    for i, (filters, kernel, stride) in enumerate(
        zip(WIDTHS, (5, 5, 5, 3, 3), (2, 2, 2, l4_stride, 1), strict=True), start=1
    ):
        x = layers.Conv2D(filters, kernel, strides=stride, activation="relu", name=f"conv2d_{i}")(x)
        x = layers.Dropout(DROP)(x)
    return layers.Flatten(name="flattened")(x)


def _dense_head(x: Any) -> Any:
    layers = _layers()
    x = layers.Dense(DENSE[0], activation="relu", name="dense_1")(x)
    x = layers.Dropout(DROP)(x)
    x = layers.Dense(DENSE[1], activation="relu", name="dense_2")(x)
    return layers.Dropout(DROP)(x)


def build_linear(input_shape: tuple[int | None, ...] = IMAGE_SHAPE) -> keras.Model:
    """KerasLinear: ``img_in`` -> ``n_outputs0`` (steering), ``n_outputs1`` (throttle), linear (N, 1)."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=input_shape, name="img_in")
    x = _dense_head(core_cnn_layers(img_in))
    outs = [layers.Dense(1, activation="linear", name=f"n_outputs{i}")(x) for i in range(2)]
    return keras.Model(inputs=[img_in], outputs=outs, name="linear")


def build_gray() -> keras.Model:
    """KerasLinear with donkeycar's ``IMAGE_DEPTH = 1``: ``img_in`` (120, 160, 1)."""
    return build_linear((*IMAGE_SHAPE[:2], 1))


def build_categorical() -> keras.Model:
    """KerasCategorical: ``img_in`` -> ``angle_out`` (N, 15) and ``throttle_out`` (N, 20) softmax."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=IMAGE_SHAPE, name="img_in")
    x = _dense_head(core_cnn_layers(img_in, l4_stride=2))
    angle_out = layers.Dense(ANGLE_BINS, activation="softmax", name="angle_out")(x)
    throttle_out = layers.Dense(THROTTLE_BINS, activation="softmax", name="throttle_out")(x)
    return keras.Model(inputs=[img_in], outputs=[angle_out, throttle_out], name="categorical")


def build_imu() -> keras.Model:
    """KerasIMU: ``img_in`` + ``imu_in`` (N, 6) -> ``out_0`` (steering), ``out_1`` (throttle) (N, 1)."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=IMAGE_SHAPE, name="img_in")
    imu_in = keras.Input(shape=(N_IMU,), name="imu_in")
    x = core_cnn_layers(img_in)
    x = layers.Dense(DENSE[0], activation="relu")(x)
    x = layers.Dropout(DROP)(x)
    y = imu_in
    for _ in range(3):
        y = layers.Dense(14, activation="relu")(y)
    z = layers.Concatenate()([x, y])
    for _ in range(2):
        z = layers.Dense(DENSE[1], activation="relu")(z)
        z = layers.Dropout(DROP)(z)
    outs = [layers.Dense(1, activation="linear", name=f"out_{i}")(z) for i in range(2)]
    return keras.Model(inputs=[img_in, imu_in], outputs=outs, name="imu")


def build_memory() -> keras.Model:
    """KerasMemory (mem_length 3, mem_depth 0): ``img_in`` + ``mem_in`` (N, 6) -> ``n_outputs0`` tanh,
    ``n_outputs1`` sigmoid (N, 1)."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=IMAGE_SHAPE, name="img_in")
    x = core_cnn_layers(img_in)
    mem_in = keras.Input(shape=(2 * MEM_LENGTH,), name="mem_in")
    y = mem_in
    for i in range(1, MEM_LENGTH):
        y = layers.Dense(2 * (MEM_LENGTH - i), activation="relu", name=f"mem_c_{i}")(y)
        y = layers.Dropout(DROP)(y)
    x = _dense_head(layers.Concatenate()([x, y]))
    outs = [
        layers.Dense(1, activation=act, name=f"n_outputs{i}")(x) for i, act in enumerate(("tanh", "sigmoid"))
    ]
    return keras.Model(inputs=[img_in, mem_in], outputs=outs, name="memory")


def build_behavior() -> keras.Model:
    """KerasBehavioral: ``img_in`` + ``xbehavior_in`` (N, 2) one-hot -> ``angle_out`` (N, 15),
    ``throttle_out`` (N, 20) softmax."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=IMAGE_SHAPE, name="img_in")
    bvh_in = keras.Input(shape=(N_BEHAVIORS,), name="xbehavior_in")
    x = core_cnn_layers(img_in)
    x = layers.Dense(DENSE[0], activation="relu")(x)
    x = layers.Dropout(DROP)(x)
    y = bvh_in
    for _ in range(3):
        y = layers.Dense(N_BEHAVIORS * 2, activation="relu")(y)
    z = layers.Concatenate()([x, y])
    for width in DENSE:
        z = layers.Dense(width, activation="relu")(z)
        z = layers.Dropout(DROP)(z)
    angle_out = layers.Dense(ANGLE_BINS, activation="softmax", name="angle_out")(z)
    throttle_out = layers.Dense(THROTTLE_BINS, activation="softmax", name="throttle_out")(z)
    return keras.Model(inputs=[img_in, bvh_in], outputs=[angle_out, throttle_out], name="behavioral")


def build_lstm() -> keras.Model:
    """KerasLSTM (seq_length 3): ``img_in`` (N, 3, 120, 160, 3), oldest frame first ->
    ``model_outputs`` (N, 2) linear: steering, throttle."""
    import keras

    layers = _layers()
    td = layers.TimeDistributed
    img_in = keras.Input(shape=(SEQ_LENGTH, *IMAGE_SHAPE), name="img_in")
    x = img_in
    for filters, kernel, stride in ((8, 5, 2), (12, 5, 2), (16, 3, 2), (16, 3, 1)):
        x = td(layers.Conv2D(filters, kernel, strides=stride, activation="relu"))(x)
    x = td(layers.MaxPooling2D(pool_size=(2, 2)))(x)
    x = td(layers.Flatten(name="flattened"))(x)
    x = td(layers.Dense(DENSE[0], activation="relu"))(x)
    x = layers.LSTM(32, return_sequences=True, name="LSTM_seq")(x)
    x = layers.LSTM(32, return_sequences=False, name="LSTM_fin")(x)
    x = layers.Dense(32, activation="relu")(x)
    out = layers.Dense(2, activation="linear", name="model_outputs")(x)
    return keras.Model(inputs=[img_in], outputs=[out], name="lstm")


def build_3dcnn() -> keras.Model:
    """Keras3D_CNN (seq_length 3): ``img_in`` (N, 3, 120, 160, 3), oldest frame first ->
    ``outputs`` (N, 2) linear: steering, throttle. Conv3D, MaxPooling3D, BatchNormalization."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=(SEQ_LENGTH, *IMAGE_SHAPE), name="img_in")
    x = img_in
    for i, filters in enumerate((8, 12, 16, 24)):
        x = layers.Conv3D(
            filters,
            kernel_size=(3, 3, 3),
            strides=(1, 2, 2) if i == 0 else (1, 1, 1),
            padding="same",
            activation="relu",
        )(x)
        x = layers.MaxPooling3D(pool_size=(1, 2, 2), strides=(1, 2, 2), padding="valid")(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(DENSE[0])(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # short training: let the moving stats converge
        x = layers.Activation("relu")(x)
        x = layers.Dropout(DROP)(x)
    out = layers.Dense(2, name="outputs")(x)
    return keras.Model(inputs=[img_in], outputs=out, name="3dcnn")


def build_dynamic() -> keras.Model:
    """Fully convolutional: ``img_in`` (N, None, None, 3) -> global average pooling ->
    ``n_outputs0``, ``n_outputs1`` (N, 1). Takes any frame size; trained at 160x120."""
    import keras

    layers = _layers()
    img_in = keras.Input(shape=(None, None, 3), name="img_in")
    x = img_in
    for i, (filters, kernel, stride) in enumerate(
        ((12, 5, 2), (16, 5, 2), (24, 3, 2), (32, 3, 2), (32, 3, 1)), start=1
    ):
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", activation="relu", name=f"conv2d_{i}"
        )(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(DENSE[1], activation="relu", name="dense_1")(x)
    outs = [layers.Dense(1, activation="linear", name=f"n_outputs{i}")(x) for i in range(2)]
    return keras.Model(inputs=[img_in], outputs=outs, name="dynamic")
